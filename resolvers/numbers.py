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

from models.tables import ORGANIZATIONS


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
    return (await claim_persona_numbers(session, org_id, 1, block_size))[0]


async def claim_persona_numbers(session: AsyncSession, org_id: uuid.UUID, count: int, block_size: int) -> list[int]:
    """`count` unused numbers, in increasing order: what is left of this process's block, then one new
    block big enough for the rest (a batch of new personas claims once, not once per persona)."""
    if count <= 0:
        return []
    bind = session.bind
    if not isinstance(bind, AsyncEngine) or bind.dialect.name == "sqlite" or block_size <= 1:
        first = await _claim(session, org_id, count)
        return list(range(first, first + count))
    blocks = _blocks.setdefault(bind, _Blocks())
    async with blocks.lock:
        start, end = blocks.ranges.get(org_id, (0, 0))
        numbers = list(range(start, min(end, start + count)))
        start += len(numbers)
        missing = count - len(numbers)
        if missing:
            size = max(block_size, missing)
            async with bind.begin() as conn:
                start = await _claim(conn, org_id, size)
            end = start + size
            numbers += range(start, start + missing)
            start += missing
        blocks.ranges[org_id] = (start, end)
        return numbers
