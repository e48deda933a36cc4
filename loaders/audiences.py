"""Which audiences each persona is in, for Persona.audiences."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from loaders.base import OrgLoader
from resolvers.audiences import memberships


class AudiencesByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    """Two statements per batch, whatever its size: the audience list, then one
    UNION ALL of every audience's search over the batch's personas."""

    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        found = await memberships(conn, self.org_id, keys)
        return [found.get(k, []) for k in keys]
