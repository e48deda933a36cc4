"""Pages and counts of a compiled search: a keyset connection ordered by
relevance, then newest first; the cursor carries the relevance too, so a
page walk neither skips nor repeats rows when new personas arrive."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, and_, func, literal, or_, select

from models.base import UTCDateTime
from resolvers.errors import BadUserInput
from resolvers.pagination import Page, PageRequest
from resolvers.search_sql import PERSONAS, CompiledSearch, Executor

P = PERSONAS.c


def _at(moment: dt.datetime) -> Any:
    return literal(moment, UTCDateTime())


@dataclass(frozen=True)
class SearchCursor:
    """Where a page ends: the relevance, the time and the id of its last row."""

    rank: int
    time: dt.datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.rank}|{self.time.isoformat()}|{self.id.hex}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> SearchCursor:
        try:
            padded = value + "=" * (-len(value) % 4)
            rank, time_part, id_part = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
            time = dt.datetime.fromisoformat(time_part)
            if time.tzinfo is None or not rank.isdigit():
                raise ValueError("malformed")
            return cls(rank=int(rank), time=time, id=uuid.UUID(hex=id_part))
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise BadUserInput(f"Malformed cursor {value[:40]!r}: pass back a cursor this API returned.") from None


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
        t, i = _at(cursor.time), literal(cursor.id)
        after = or_(time < t, and_(time == t, id_ < i))
        if not request.forward:
            after = or_(time > t, and_(time == t, id_ > i))
        if search.rank is not None:
            r = literal(cursor.rank)
            after = or_(search.rank > r if request.forward else search.rank < r, and_(search.rank == r, after))
        stmt = stmt.where(after)
    order = [time.desc(), id_.desc()] if request.forward else [time.asc(), id_.asc()]
    if search.rank is not None:
        order.insert(0, search.rank.asc() if request.forward else search.rank.desc())
    return stmt.order_by(*order).limit(request.size + 1)


async def search_page(conn: Executor, search: CompiledSearch, request: SearchPageRequest) -> Page[Row[Any]]:
    rows = list((await conn.execute(_page_statement(search, request))).all())
    has_more = len(rows) > request.size
    items = rows[: request.size]
    if not request.forward:
        items.reverse()
    cursors = [SearchCursor(int(getattr(r, _RANK)), r.created_at, r.id).encode() for r in items]
    seen_cursor = request.cursor is not None
    if request.forward:
        return Page(items, cursors, has_next_page=has_more, has_previous_page=seen_cursor)
    return Page(items, cursors, has_next_page=seen_cursor, has_previous_page=has_more)


async def search_count(conn: Executor, search: CompiledSearch) -> int:
    stmt = select(func.count()).select_from(PERSONAS).where(*search.conditions)
    return int((await conn.execute(stmt)).scalar_one())
