"""Pages and counts of a compiled search: a keyset connection ordered by
relevance, then newest first; the cursor carries the relevance too, so a
page walk neither skips nor repeats rows when new personas arrive."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, and_, func, literal, or_, select

from resolvers.errors import BadUserInput
from resolvers.pagination import Page, PageRequest, after_cursor, aware_time, build_page, decode_cursor, encode_cursor
from resolvers.search_sql import PERSONAS, CompiledSearch, Executor

P = PERSONAS.c


@dataclass(frozen=True)
class SearchCursor:
    """Where a page ends: the relevance, the time and the id of its last row."""

    rank: int
    time: dt.datetime
    id: uuid.UUID

    def encode(self) -> str:
        return encode_cursor(str(self.rank), self.time.isoformat(), self.id.hex)

    @classmethod
    def decode(cls, value: str) -> SearchCursor:
        def parse(parts: list[str]) -> SearchCursor:
            rank, time_part, id_part = parts
            if not rank.isdigit():
                raise ValueError("malformed rank")
            return cls(rank=int(rank), time=aware_time(time_part), id=uuid.UUID(hex=id_part))

        return decode_cursor(value, parse)


@dataclass(frozen=True)
class SearchPageRequest:
    size: int
    forward: bool
    cursor: SearchCursor | None

    @classmethod
    def from_args(
        cls, first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None
    ) -> SearchPageRequest:
        """The same rules as every connection (pagination.PageRequest), with search cursors."""
        if after is not None and before is not None:
            raise BadUserInput("Pass either after or before, not both.")
        plain = PageRequest.from_args(first, None, last, None)
        forward = last is None and before is None
        raw = after if forward else before
        return cls(size=plain.size, forward=forward, cursor=SearchCursor.decode(raw) if raw is not None else None)


_RANK = "search_rank"


def _page_statement(search: CompiledSearch, request: SearchPageRequest) -> Select[Any]:
    rank = search.rank if search.rank is not None else literal(0)
    stmt = select(PERSONAS, rank.label(_RANK)).where(*search.conditions)
    time, id_ = P.created_at, P.id
    cursor = request.cursor
    if cursor is not None:
        after = after_cursor(time, id_, cursor, request.forward)
        if search.rank is not None:
            r = literal(cursor.rank)
            after = or_(search.rank > r if request.forward else search.rank < r, and_(search.rank == r, after))
        stmt = stmt.where(after)
    order = [time.desc(), id_.desc()] if request.forward else [time.asc(), id_.asc()]
    if search.rank is not None:
        order.insert(0, search.rank.asc() if request.forward else search.rank.desc())
    return stmt.order_by(*order).limit(request.size + 1)


async def search_page(conn: Executor, search: CompiledSearch, request: SearchPageRequest) -> Page[Row[Any]]:
    rows = (await conn.execute(_page_statement(search, request))).all()
    return build_page(rows, request, lambda r: SearchCursor(int(getattr(r, _RANK)), r.created_at, r.id))


async def search_count(conn: Executor, search: CompiledSearch) -> int:
    stmt = select(func.count()).select_from(PERSONAS).where(*search.conditions)
    return int((await conn.execute(stmt)).scalar_one())
