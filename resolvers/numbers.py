"""Persona numbers: short, per organization, allocated in blocks.

On PostgreSQL a process claims a block of numbers in its own short
transaction, so concurrent ingests never queue on the organization row; on
SQLite (one writer at a time anyway) the number is claimed in the caller's
transaction. Numbers are unique but may have gaps.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from models import Organization

ORGANIZATIONS = Organization.__table__  # type: ignore[attr-defined]


async def _claim(conn: AsyncConnection | AsyncSession, org_id: uuid.UUID, count: int) -> int:
    result = await conn.execute(
        update(ORGANIZATIONS)
        .where(ORGANIZATIONS.c.id == org_id)
        .values(next_persona_number=ORGANIZATIONS.c.next_persona_number + count)
        .returning(ORGANIZATIONS.c.next_persona_number)
    )
    return int(result.scalar_one()) - count


class _Blocks:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.ranges: dict[uuid.UUID, tuple[int, int]] = {}


_blocks: weakref.WeakKeyDictionary[AsyncEngine, _Blocks] = weakref.WeakKeyDictionary()


async def next_persona_number(session: AsyncSession, org_id: uuid.UUID, block_size: int) -> int:
    bind = session.bind
    if not isinstance(bind, AsyncEngine) or bind.dialect.name == "sqlite" or block_size <= 1:
        return await _claim(session, org_id, 1)
    blocks = _blocks.setdefault(bind, _Blocks())
    async with blocks.lock:
        start, end = blocks.ranges.get(org_id, (0, 0))
        if start >= end:
            async with bind.begin() as conn:
                start = await _claim(conn, org_id, block_size)
            end = start + block_size
        blocks.ranges[org_id] = (start + 1, end)
        return start
