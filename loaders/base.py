"""The DataLoader shape every loader here follows.

A loader is made per request for one organization. Its batch function opens
its own read-only connection (sibling fields resolve concurrently, so no
connection is shared), runs one statement scoped to the organization in SQL,
and returns exactly one result per key, in key order.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncConnection

from database import Database

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class OrgLoader(DataLoader[K, V], Generic[K, V]):
    def __init__(self, db: Database, org_id: uuid.UUID) -> None:
        super().__init__()
        self.db = db
        self.org_id = org_id

    async def batch_load_fn(self, keys: Sequence[K]) -> list[V]:
        async with self.db.read() as conn:
            return await self.fetch(conn, list(keys))

    async def fetch(self, conn: AsyncConnection, keys: list[K]) -> list[V]:
        raise NotImplementedError
