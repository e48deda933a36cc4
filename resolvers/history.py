"""The History tab: a persona's rows of each kind as newest-first keyset pages,
and the timeline that merges every kind into one page.

Every kind is keyed (time, id). Ids are UUIDv7, unique across tables, so one
(time, id) cursor orders rows of different tables too: the timeline selects
(kind, time, id) from each table past the cursor, merges them with UNION ALL,
keeps the newest, then fetches the full rows of each kind on the page.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from coalesce import JsonDocument, RowLike, Statement
from models.base import UTCDateTime, one_of
from models.tables import (
    ENTRIES,
    HISTORY_COUNTS,
    MERGES,
    MESSAGES,
    ORDERS,
    PERSONA_ACTIONS,
    PIXEL_EVENTS,
    REDEMPTIONS,
    SURVEY_SUBMISSIONS,
)
from resolvers.history_json import NODE_TYPES
from resolvers.pagination import Cursor, Page, PageRequest, Selection, aware_time, build_page, keyset_select


class HistoryKind(StrEnum):
    """The kinds of history rows; the values are the GraphQL TimelineKind names."""

    POINTS = "POINTS"
    ORDER = "ORDER"
    MESSAGE = "MESSAGE"
    REDEMPTION = "REDEMPTION"
    MERGE = "MERGE"
    SURVEY = "SURVEY"
    ACTION = "ACTION"
    PIXEL_EVENT = "PIXEL_EVENT"


@dataclass(frozen=True)
class KindTable:
    table: Table
    time_column: str
    # A row belongs to the persona when any of these columns names it.
    persona_columns: tuple[str, ...] = ("persona_id",)

    def time(self) -> Any:
        return self.table.c[self.time_column]

    def owned_by(self, org_id: uuid.UUID, persona_id: uuid.UUID) -> list[ColumnElement[bool]]:
        c = self.table.c
        return [c.org_id == org_id, or_(*(c[name] == persona_id for name in self.persona_columns))]


KINDS: dict[HistoryKind, KindTable] = {
    HistoryKind.POINTS: KindTable(ENTRIES, "created_at"),
    HistoryKind.ORDER: KindTable(ORDERS, "placed_at"),
    HistoryKind.MESSAGE: KindTable(MESSAGES, "sent_at"),
    HistoryKind.REDEMPTION: KindTable(REDEMPTIONS, "redeemed_at"),
    # A persona's merges: those it survived and the one that merged it away.
    HistoryKind.MERGE: KindTable(MERGES, "merged_at", ("survivor_id", "merged_id")),
    HistoryKind.SURVEY: KindTable(SURVEY_SUBMISSIONS, "submitted_at"),
    HistoryKind.ACTION: KindTable(PERSONA_ACTIONS, "occurred_at"),
    HistoryKind.PIXEL_EVENT: KindTable(PIXEL_EVENTS, "occurred_at"),
}


# Reads a statement's rows: Database.select (a request's reads of one tick go to PostgreSQL as one).
ReadRows = Callable[[Statement, Mapping[str, Any]], Awaitable[list[RowLike]]]


@cache
def _page_statement(kind: HistoryKind, forward: bool, after: bool) -> Select[Any]:
    """keyset_select's page of one kind with the persona, the cursor and the size as
    parameters: built once per (kind, direction, cursor or not), so SQLAlchemy finds its
    compiled form by the cached statement and a coalesced read reuses its renamed form.
    Its rows leave out the organization and the persona (the parameters they equal): two
    UUIDs less to decode per row of a card's history."""
    c = KINDS[kind].table.c
    return _page_of(kind, forward, after, [column for column in c if column.name not in ("org_id", "persona_id")])


@lru_cache(maxsize=256)  # a selection is the client's to choose: kept bounded
def _json_page_statement(kind: HistoryKind, forward: bool, after: bool, nodes: Selection) -> Select[Any] | None:
    """The same page with each row's node as JSON (resolvers/history_json.py) beside the
    time and id its cursor needs; None when the selection has no JSON form."""
    spec = KINDS[kind]
    node = NODE_TYPES[spec.table.name].json(spec.table, nodes)
    if node is None:
        return None
    # The time and id only make cursors, and only the page's ends need theirs (LazyCursors):
    # they come as text, read when a cursor is made (_cursor_of_text).
    time, id_ = cast(spec.time(), Text).label("cursor_time"), cast(spec.table.c.id, Text).label("cursor_id")
    return _page_of(kind, forward, after, [time, id_, cast(node, JsonDocument).label("node")])


def _cursor_of_text(row: RowLike) -> Cursor:
    """The cursor of a JSON page's row, from its time and id as PostgreSQL writes them."""
    return Cursor(aware_time(row.cursor_time).astimezone(dt.UTC), uuid.UUID(row.cursor_id))


def _page_of(kind: HistoryKind, forward: bool, after: bool, columns: list[ColumnElement[Any]]) -> Select[Any]:
    spec = KINDS[kind]
    c = spec.table.c
    time, id_ = spec.time(), c.id
    persona = bindparam("persona_id", type_=id_.type)
    owned = or_(*(c[name] == persona for name in spec.persona_columns))
    stmt = select(*columns).where(c.org_id == bindparam("org_id"), owned)
    if after:
        t, i = bindparam("cursor_time", type_=UTCDateTime()), bindparam("cursor_id", type_=id_.type)
        past = or_(time < t, and_(time == t, id_ < i)) if forward else or_(time > t, and_(time == t, id_ > i))
        stmt = stmt.where(past)
    order = (time.desc(), id_.desc()) if forward else (time.asc(), id_.asc())
    return stmt.order_by(*order).limit(bindparam("page_limit", type_=Integer()))


async def history_page(
    read: ReadRows, org_id: uuid.UUID, persona_id: uuid.UUID, kind: HistoryKind, request: PageRequest
) -> Page[RowLike]:
    """One page of the persona's rows of one kind, newest first."""
    statement = _page_statement(kind, request.forward, request.cursor is not None)
    time_column = KINDS[kind].time_column
    return await _read_page(
        read, statement, org_id, persona_id, request, lambda r: Cursor(getattr(r, time_column), r.id)
    )


async def history_json_page(
    read: ReadRows, org_id: uuid.UUID, persona_id: uuid.UUID, kind: HistoryKind, request: PageRequest, nodes: Selection
) -> Page[RowLike] | None:
    """The same page, each row with its node as JSON for the selection (`row.node`); None
    (and nothing read) when the selection has no JSON form."""
    statement = _json_page_statement(kind, request.forward, request.cursor is not None, nodes)
    if statement is None:
        return None
    return await _read_page(read, statement, org_id, persona_id, request, _cursor_of_text)


async def _read_page(
    read: ReadRows,
    statement: Select[Any],
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    request: PageRequest,
    cursor_of: Callable[[RowLike], Cursor],
) -> Page[RowLike]:
    params: dict[str, Any] = {"org_id": org_id, "persona_id": persona_id, "page_limit": request.size + 1}
    if request.cursor is not None:
        params |= {"cursor_time": request.cursor.time, "cursor_id": request.cursor.id}
    return build_page(await read(statement, params), request, cursor_of)


# "count" is a tuple's method on a row: read as "total".
COUNTS_OF = select(HISTORY_COUNTS.c.persona_id, HISTORY_COUNTS.c.kind, HISTORY_COUNTS.c["count"].label("total")).where(
    HISTORY_COUNTS.c.org_id == bindparam("org_id"), one_of(HISTORY_COUNTS.c.persona_id, "persona_ids")
)


async def history_counts(read: ReadRows, org_id: uuid.UUID, keys: Sequence[tuple[uuid.UUID, HistoryKind]]) -> list[int]:
    """How many rows of each (persona, kind) there are, in key order: one statement for all
    of them (a card asks for eight totals; a list page for eight per persona), reading the
    counts the history tables' triggers keep (models.HistoryCount, migration 0005)."""
    if not keys:
        return []
    personas = sorted({persona_id for persona_id, _ in keys})
    rows = await read(COUNTS_OF, {"org_id": org_id, "persona_ids": personas})
    counts = {(r.persona_id, r.kind): int(r.total) for r in rows}
    return [counts.get((persona_id, kind.value), 0) for persona_id, kind in keys]


@dataclass(frozen=True)
class TimelineItem:
    kind: HistoryKind
    row: Row[Any]


def _timeline_keys(org_id: uuid.UUID, persona_id: uuid.UUID, kinds: Sequence[HistoryKind], request: PageRequest) -> Any:
    """(kind, at, id) of the page's rows across the tables: each branch is cut
    to one page past the cursor first, so no table is read further than a page."""
    branches = []
    for kind in kinds:
        spec = KINDS[kind]
        time, id_ = spec.time(), spec.table.c.id
        branch = select(
            # A literal column, not a bound parameter: PostgreSQL cannot type an
            # untyped parameter inside a UNION.
            literal_column(f"'{kind.value}'", String).label("kind"),
            time.label("at"),
            id_.label("id"),
        ).where(*spec.owned_by(org_id, persona_id))
        cut = keyset_select(branch, time, id_, request).subquery(f"t_{kind.value.lower()}")
        branches.append(select(cut.c.kind, cut.c.at, cut.c.id))
    merged = union_all(*branches).subquery("timeline")
    stmt = select(merged.c.kind, merged.c.at, merged.c.id)
    # The cursor was applied in each branch; this orders and limits the merge.
    return keyset_select(stmt, merged.c.at, merged.c.id, PageRequest(request.size, request.forward, None))


async def timeline_page(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    request: PageRequest,
    kinds: Sequence[HistoryKind] | None = None,
) -> Page[TimelineItem]:
    """Every kind (or the given ones) in one newest-first page: one statement for
    the keys, then one per kind present on the page for the rows."""
    chosen = [k for k in HistoryKind if kinds is None or k in kinds]
    found_keys: Sequence[Row[Any]] = []
    if chosen:
        found_keys = (await conn.execute(_timeline_keys(org_id, persona_id, chosen, request))).all()
    keys = build_page(found_keys, request, lambda k: Cursor(k.at, k.id))
    ids_by_kind: dict[HistoryKind, list[uuid.UUID]] = {}
    for key in keys.items:
        ids_by_kind.setdefault(HistoryKind(key.kind), []).append(key.id)
    rows: dict[uuid.UUID, Row[Any]] = {}
    for kind, ids in ids_by_kind.items():
        table = KINDS[kind].table
        found = await conn.execute(select(table).where(table.c.org_id == org_id, table.c.id.in_(ids)))
        rows.update((r.id, r) for r in found)
    # A row erased between the two statements (a privacy request) is left out.
    kept = [(key, cursor) for key, cursor in zip(keys.items, keys.cursors, strict=True) if key.id in rows]
    return Page(
        items=[TimelineItem(HistoryKind(key.kind), rows[key.id]) for key, _ in kept],
        cursors=[cursor for _, cursor in kept],
        has_next_page=keys.has_next_page,
        has_previous_page=keys.has_previous_page,
    )


__all__ = [
    "KINDS",
    "HistoryKind",
    "TimelineItem",
    "history_counts",
    "history_json_page",
    "history_page",
    "timeline_page",
]
