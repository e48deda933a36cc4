"""Pages and counts of a compiled search: a keyset connection ordered by
relevance, then newest first; the cursor carries the relevance too, so a
page walk neither skips nor repeats rows when new personas arrive.

A page's rows may carry what the Personas page shows beside each persona
(`Carry`): the points balance and the tags, read by the page's own statement
instead of a loader statement each."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Integer,
    Row,
    Select,
    Subquery,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from database import select_rows
from models.tables import PERSONAS, ROLLUPS, TAGS
from resolvers.errors import BadUserInput
from resolvers.pagination import Page, PageRequest, after_cursor, aware_time, build_page, decode_cursor, encode_cursor
from resolvers.search_names import first_page
from resolvers.search_sql import CompiledSearch, template_conditions
from resolvers.search_terms import FULL_NAME, Dialect, Executor, relevance

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
_TOTAL = "search_total"
# The columns a page's rows carry (Carry); Persona.reward_points reads CARRIED_POINTS.
CARRIED_POINTS = "search_points_balance"
_CARRIED_TAGS = "search_tags"


@dataclass(frozen=True)
class Carry:
    """What the page's rows bring along for each persona, read in the page's statement.

    `points`: the balance as Persona.rewardPoints gives it (0 without a rollup);
    `tags`: the tags as TagsByPersonaLoader gives them (alphabetical, by the database's
    ordering of the column). Each is a correlated lookup of the page's rows only."""

    points: bool = False
    tags: bool = False


NOTHING = Carry()


def _carried_columns(carry: Carry, sqlite: bool) -> list[Any]:
    columns: list[Any] = []
    if carry.points:
        balance = select(ROLLUPS.c.points_balance).where(ROLLUPS.c.org_id == P.org_id, ROLLUPS.c.persona_id == P.id)
        # (Each computed column CAST to its type: a statement whose every column's type is
        # declared goes straight to the driver, database.select_rows.)
        columns.append(cast(func.coalesce(balance.scalar_subquery(), 0), Integer).label(CARRIED_POINTS))
    if carry.tags:
        of_persona = (TAGS.c.org_id == P.org_id, TAGS.c.persona_id == P.id)
        if sqlite:
            # SQLite has no ordered aggregate before 3.44: its JSON array is sorted in Python,
            # which orders text as SQLite's BINARY collation does.
            tags: ColumnElement[Any] = select(func.json_group_array(TAGS.c.tag)).where(*of_persona).scalar_subquery()
        else:
            ordered = func.json_agg(aggregate_order_by(TAGS.c.tag, TAGS.c.tag))
            tags = cast(select(ordered).where(*of_persona).scalar_subquery(), JSON)
        columns.append(tags.label(_CARRIED_TAGS))
    return columns


# Built once: they hold no value of the request (correlated to the page's personas only).
_CARRIED = {
    (carry, sqlite): _carried_columns(carry, sqlite)
    for carry in (Carry(p, t) for p in (False, True) for t in (False, True))
    for sqlite in (False, True)
}


def _carried(carry: Carry, sqlite: bool) -> list[Any]:
    return _CARRIED[carry, sqlite]


def carried_tags(row: Row[Any]) -> list[str]:
    """The tags a row of a page with Carry(tags=True) carries."""
    value = getattr(row, _CARRIED_TAGS)
    if isinstance(value, str):  # SQLite: a JSON array
        return sorted(json.loads(value))
    return list(value or [])


def _after(rank: Any, time: Any, id_: Any, request: SearchPageRequest, ranked: bool) -> ColumnElement[bool] | None:
    """The keyset condition: rows after the cursor in (relevance, newest first) order."""
    cursor = request.cursor
    if cursor is None:
        return None
    after = after_cursor(time, id_, cursor, request.forward)
    if not ranked:
        return after
    r = literal(cursor.rank)
    return or_(rank > r if request.forward else rank < r, and_(rank == r, after))


def _order(rank: Any, time: Any, id_: Any, request: SearchPageRequest, ranked: bool) -> list[Any]:
    order = [time.desc(), id_.desc()] if request.forward else [time.asc(), id_.asc()]
    if ranked:
        order.insert(0, rank.asc() if request.forward else rank.desc())
    return order


def _page_statement(
    search: CompiledSearch,
    request: SearchPageRequest,
    *,
    with_total: bool = False,
    carry: Carry = NOTHING,
    sqlite: bool = False,
) -> Select[Any]:
    """One page of a search; with `with_total`, every row also carries the count of all matches.

    A plain search reads its page straight off the personas (in index order where an
    index serves it); its count rides along as `count(*) OVER ()` only on a first page
    (the window counts what the WHERE matches, before the cursor would cut it). A
    ranked search has its own statement (_ranked_page_statement)."""
    if search.rank is not None:
        return _ranked_page_statement(
            search, search.rank, request, with_total=with_total, carry=_carried(carry, sqlite)
        )
    if with_total and request.cursor is not None:
        raise ValueError("a plain search counts in its page's statement on a first page only")
    rank = literal(0)
    columns: list[Any] = [PERSONAS, cast(rank, Integer).label(_RANK), *_carried(carry, sqlite)]
    if with_total:
        columns.append(cast(func.count().over(), BigInteger).label(_TOTAL))
    stmt = select(*columns).where(*search.conditions)
    after = _after(rank, P.created_at, P.id, request, ranked=False)
    if after is not None:
        stmt = stmt.where(after)
    return stmt.order_by(*_order(rank, P.created_at, P.id, request, ranked=False)).limit(request.size + 1)


def _ranked_page_statement(
    search: CompiledSearch, rank: ColumnElement[int], request: SearchPageRequest, *, with_total: bool, carry: list[Any]
) -> Select[Any]:
    """A ranked search (name words) must rank every match before it knows its first page.

    So it ranks narrow rows (id, time, relevance) and reads the whole persona for the
    page's rows only. The full name is computed once per match and ranked from there:
    the OFFSET 0 keeps PostgreSQL from inlining it back into each of the relevance's
    comparisons (about a third of the statement's time for ~30k matches). When the
    count is asked for, it rides along as `count(*) OVER ()` over the matches that the
    ranking reads anyway, instead of a second pass of its own (at a million personas a
    common name word matches ~30k of them: ~80 ms per pass here). The cursor applies
    after the count, which is of the whole search."""
    if search.name_words:
        n = (
            select(P.org_id, P.id, P.created_at, FULL_NAME.label("search_name"))
            .where(*search.conditions)
            .offset(0)
            .subquery("search_names")
            .c
        )
        matching = select(n.org_id, n.id, n.created_at, relevance(n.search_name, search.name_words).label(_RANK))
    else:
        matching = select(P.org_id, P.id, P.created_at, rank.label(_RANK)).where(*search.conditions)
    if with_total:
        matching = matching.add_columns(func.count().over().label(_TOTAL))
    m = matching.subquery("search_matches").c
    page_stmt = select(*m)
    after = _after(m[_RANK], m.created_at, m.id, request, ranked=True)
    if after is not None:
        page_stmt = page_stmt.where(after)
    order = _order(m[_RANK], m.created_at, m.id, request, ranked=True)
    page_rows = page_stmt.order_by(*order).limit(request.size + 1).subquery("search_page")
    page = page_rows.c
    return _whole_personas(page_rows, page[_RANK], request, carry, page[_TOTAL] if with_total else None)


def _whole_personas(
    page_rows: Subquery, rank: Any, request: SearchPageRequest, carry: list[Any], total: Any | None
) -> Select[Any]:
    """The page's personas (org_id, id, created_at of `page_rows`) as whole rows, in its order,
    with their relevance, what they carry and the count."""
    page = page_rows.c
    extra = [cast(rank, Integer).label(_RANK), *carry]
    if total is not None:
        extra.append(cast(total, BigInteger).label(_TOTAL))
    return (
        select(PERSONAS, *extra)
        .join_from(PERSONAS, page_rows, and_(P.org_id == page.org_id, P.id == page.id))
        .order_by(*_order(rank, page.created_at, page.id, request, ranked=True))
    )


def _page(rows: Sequence[Row[Any]], request: SearchPageRequest) -> Page[Row[Any]]:
    return build_page(rows, request, lambda r: SearchCursor(int(getattr(r, _RANK)), r.created_at, r.id))


# First pages of templated searches (search_sql.SearchTemplate), by (shape, size, total, carry,
# dialect), and of one-word searches (search_names.first_page): built once, each search binds its
# values. Page sizes are the client's: kept bounded.
_TEMPLATED_PAGES: dict[tuple[Any, ...], Select[Any]] = {}
TEMPLATED_PAGES_KEPT = 512


def _statement(
    search: CompiledSearch, request: SearchPageRequest, *, with_total: bool, carry: Carry, sqlite: bool
) -> tuple[Select[Any], dict[str, Any]]:
    """The page's statement and the values it binds."""
    one_word = search.one_word
    if one_word is not None and request.cursor is None and request.forward:

        def one_word_page() -> Select[Any]:
            page, total = first_page(one_word.include_archived, request.size + 1)
            carried = _carried(carry, sqlite=False)
            return _whole_personas(page, page.c.rank, request, carried, total if with_total else None)

        shape = ("one word", one_word.include_archived, request.size, with_total, carry)
        return _kept(shape, one_word_page), one_word.params()
    template = search.template
    if template is None or request.cursor is not None:
        return _page_statement(search, request, with_total=with_total, carry=carry, sqlite=sqlite), {}

    def templated_page() -> Select[Any]:
        named = CompiledSearch(template_conditions(template.shape), None, selective=True)
        return _page_statement(named, request, with_total=with_total, carry=carry, sqlite=sqlite)

    key = (template.shape, request.size, request.forward, with_total, carry, sqlite)
    return _kept(key, templated_page), template.params


def _kept(key: tuple[Any, ...], build: Callable[[], Select[Any]]) -> Select[Any]:
    """The page statement kept under `key`, built on first use."""
    stmt = _TEMPLATED_PAGES.get(key)
    if stmt is None:
        if len(_TEMPLATED_PAGES) >= TEMPLATED_PAGES_KEPT:
            _TEMPLATED_PAGES.clear()
        stmt = _TEMPLATED_PAGES[key] = build()
    return stmt


async def _rows(conn: Executor, stmt: Select[Any], params: dict[str, Any]) -> Sequence[Any]:
    """The page statement's rows: one kept and bound by name goes the way a loader's statement
    does on a request's read connection (straight to the driver: database.select_rows)."""
    if params and isinstance(conn, AsyncConnection):
        return await select_rows(conn, stmt, params)
    rows: Sequence[Row[Any]] = (await conn.execute(stmt, params)).all()
    return rows


async def search_page(
    conn: Executor, search: CompiledSearch, request: SearchPageRequest, carry: Carry = NOTHING
) -> Page[Row[Any]]:
    stmt, params = _statement(search, request, with_total=False, carry=carry, sqlite=Dialect.of(conn).sqlite)
    return _page(await _rows(conn, stmt, params), request)


async def search_page_counted(
    conn: Executor, search: CompiledSearch, request: SearchPageRequest, carry: Carry = NOTHING
) -> tuple[Page[Row[Any]], int | None]:
    """The page and, where it costs no pass of its own, the count of every match (else None).

    It does for a ranked search (the ranking reads every match anyway), and for the
    first page of a selective one (an exact email, phone or name: a handful of matches)."""
    if search.rank is None and not (search.selective and request.cursor is None):
        return await search_page(conn, search, request, carry), None
    stmt, params = _statement(search, request, with_total=True, carry=carry, sqlite=Dialect.of(conn).sqlite)
    rows = await _rows(conn, stmt, params)
    if rows:
        return _page(rows, request), int(getattr(rows[0], _TOTAL))
    # No row carries the count: none matched, or the cursor is past the last match.
    return _page(rows, request), 0 if request.cursor is None else None


async def search_count(conn: Executor, search: CompiledSearch) -> int:
    stmt = select(func.count()).select_from(PERSONAS).where(*search.conditions)
    return int((await conn.execute(stmt)).scalar_one())
