"""Coalesced reads, exact rows: every caller gets exactly the rows the normal path
gives (database.RequestDatabase.select), the same values of the same Python types,
in the same order, under the same keys, for every table, every loader and history
statement, a long ordered read, and times in the session's time zone. On PostgreSQL
a request's reads of one event-loop tick go out as ONE statement; on SQLite each
read runs as is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import DateTime, Float, Numeric, cast, column, func, insert, literal, select, table, union_all

from coalesce import RowLike, Statement
from database import Database
from loaders.card import (
    ATTRIBUTES_OF,
    CONSENTS_OF,
    DISCOUNTS_OF_ORG,
    LAST_REDEMPTIONS_OF,
    PURCHASE_COUNTS_OF,
    ROLLUPS_OF,
    SIGNUPS_OF,
    TAGS_OF,
)
from loaders.history import EARNED_BY, LINES_OF
from loaders.persona import ORGANIZATION, PERSONAS_BY_NUMBER
from models import Organization, PersonaTag, PointsEntry, SignupSubmission
from models.tables import PERSONAS
from resolvers.audiences import AUDIENCES_OF
from resolvers.history import HistoryKind, history_counts, history_json_page, history_page
from resolvers.pagination import Cursor, PageRequest, Selection
from tests.coalesced_reads_support import POSTGRESQL_ONLY, TABLES, EveryColumn, counting
from tests.conftest import StatementCounter


async def _statement_of(call: Any) -> tuple[Statement, dict[str, Any]]:
    """The statement a resolver reads and its parameters, caught on their way to the database."""
    caught: list[tuple[Statement, dict[str, Any]]] = []

    async def catch(statement: Statement, params: Mapping[str, Any]) -> list[RowLike]:
        caught.append((statement, dict(params)))
        return []

    await call(catch)
    return caught[0]


async def _cases(db: Database, given: EveryColumn) -> list[tuple[Statement, dict[str, Any]]]:
    """Every table whole, and the statements the loaders and history pages read."""
    org_id, personas = given.org_id, given.ids("personas")
    async with db.engine.begin() as conn:
        # Two entries of an order whose sum passes int4: the sum of EARNED_BY is a bigint.
        for _ in range(2):
            entry = {**given.row(PointsEntry.__table__, "full"), "kind": "ORDER"}  # type: ignore[attr-defined]
            await conn.execute(insert(PointsEntry.__table__), [entry])  # type: ignore[attr-defined]
    keyed = {"org_id": org_id, "keys": personas}
    tags = PersonaTag.__table__  # type: ignore[attr-defined]
    cursor = Cursor(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), uuid.UUID(int=2**128 - 1))
    page = await _statement_of(
        lambda read: history_page(read, org_id, personas[0], HistoryKind.POINTS, PageRequest(5, True, cursor))
    )
    merges = await _statement_of(
        lambda read: history_page(read, org_id, personas[0], HistoryKind.MERGE, PageRequest(5, False, None))
    )
    counts = await _statement_of(
        lambda read: history_counts(read, org_id, [(p, k) for p in personas for k in HistoryKind])
    )
    # On PostgreSQL, a page of nodes built as JSON (resolvers/history_json.py), nested objects and lists included.
    nodes: Selection = (
        ("id", "id", None),
        ("total", "total", None),
        ("store", "store", (("name", "name", None),)),
        ("lines", "lines", (("product", "product", None), ("unitPrice", "unitPrice", None))),
    )
    json_pages = (
        []
        if db.is_sqlite
        else [
            await _statement_of(
                lambda read: history_json_page(
                    read, org_id, personas[0], HistoryKind.ORDER, PageRequest(5, True, None), nodes
                )
            )
        ]
    )
    return [
        *((select(tbl).order_by(*tbl.primary_key.columns), {}) for tbl in TABLES),
        (ROLLUPS_OF, keyed),
        (CONSENTS_OF, keyed),
        (ATTRIBUTES_OF, keyed),
        (TAGS_OF, keyed),
        (SIGNUPS_OF, keyed),
        (PURCHASE_COUNTS_OF, keyed),
        (LAST_REDEMPTIONS_OF, keyed),
        (DISCOUNTS_OF_ORG, {"org_id": org_id}),
        (ORGANIZATION, {"org_id": org_id}),
        (PERSONAS_BY_NUMBER, {"org_id": org_id, "keys": given.ids("personas", "number")}),
        (EARNED_BY, {"org_id": org_id, "keys": given.ids("orders")}),
        (LINES_OF, {"org_id": org_id, "keys": given.ids("orders")}),
        (AUDIENCES_OF, {"org_id": org_id}),
        page,
        merges,
        counts,
        *json_pages,
        # Unnamed expressions: their keys (count_1, max_1) are the compiled statement's
        (select(tags.c.persona_id, func.count(), func.max(tags.c.tag)).group_by(tags.c.persona_id), {}),
        (union_all(select(func.count()).select_from(tags), select(func.count()).select_from(PERSONAS)), {}),
        # Numbers with no exact float form: as their text, never through a float
        (
            select(
                cast(literal("12345678901234567890.0123456789"), Numeric(40, 10)).label("exact"),
                cast(literal("-1e-300"), Float).label("tiny"),
                cast(literal("-Infinity"), Float).label("low"),
            ),
            {},
        ),
    ]


def _described(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Everything a caller can tell of the rows: keys, values with their types (repr shows
    a time's zone and a Decimal's digits), and each value read by its key."""
    return [
        (
            tuple(row._fields),
            repr(tuple(row)),
            tuple(type(v) for v in row),
            tuple(getattr(row, key) for key in row._fields if not hasattr(tuple, key)),
            tuple(row._mapping[key] for key in row._fields),
        )
        for row in rows
    ]


async def test_every_table_and_loader_statement_reads_back_exactly_as_the_normal_path(
    db: Database, org: Organization, statements: StatementCounter, backend: str
) -> None:
    # Given two rows in every table (one with every column filled, one with every nullable one null)
    given = EveryColumn()
    await given.fill(db)
    cases = await _cases(db, given)

    # When every table and every loader statement is read at once through one request
    reads = db.for_request()
    try:
        with counting(statements):
            coalesced = await asyncio.gather(*(reads.select(statement, params) for statement, params in cases))
    finally:
        await reads.close()

    # Then PostgreSQL got one statement, SQLite one each
    assert statements.count == (1 if backend == "postgresql" else len(cases))
    # And each caller got what the normal path gives, down to the types and the order
    async with db.read() as conn:
        for (statement, params), got in zip(cases, coalesced, strict=True):
            expected = (await conn.execute(statement, params)).all()
            assert _described(got) == _described(expected), str(statement)
    whole_tables = coalesced[: len(TABLES)]
    assert all(len(rows) >= 2 for rows in whole_tables)


async def test_a_long_ordered_read_keeps_its_order(db: Database, org: Organization, backend: str) -> None:
    # Given 400 sign-ups of one persona, at times that do not sort like their ids
    given = EveryColumn()
    await given.fill(db)
    persona = given.made["personas"]["full"]
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    rows = [
        SignupSubmission(
            org_id=given.org_id,
            persona_id=persona["id"],
            form_name=f"Form {n}",
            url=f"https://example.com/{n}",
            submitted_at=base + dt.timedelta(minutes=(n * 7919) % 400),
        ).model_dump()
        for n in range(400)
    ]
    async with db.engine.begin() as conn:
        await conn.execute(insert(SignupSubmission), rows)
    params = {"org_id": given.org_id, "keys": [persona["id"]]}

    # When they are read newest first beside another read
    reads = db.for_request()
    try:
        signups, _ = await asyncio.gather(reads.select(SIGNUPS_OF, params), reads.select(TAGS_OF, params))
    finally:
        await reads.close()

    # Then they come in the statement's order
    async with db.read() as conn:
        expected = (await conn.execute(SIGNUPS_OF, params)).all()
    assert len(signups) == 401
    assert [tuple(r) for r in signups] == [tuple(r) for r in expected]


@POSTGRESQL_ONLY
async def test_times_come_in_the_session_time_zone_as_psycopg_gives_them(
    db: Database, org: Organization, backend: str
) -> None:
    # Given a request whose connection reads times in New York
    given = EveryColumn()
    await given.fill(db)
    orders = table("orders", column("placed_at", DateTime(timezone=True)), column("org_id"))
    reads = db.for_request()
    try:
        async with reads.read() as conn:
            await conn.exec_driver_sql("SET TIME ZONE 'America/New_York'")
            aware, naive = DateTime(timezone=True), DateTime(timezone=False)
            plain = select(cast(orders.c.placed_at, aware).label("at"), cast(orders.c.placed_at, naive).label("local"))
            plain = plain.where(orders.c.org_id == given.org_id).order_by(orders.c.placed_at)
            expected = (await conn.execute(plain)).all()

        # When plain timestamptz values (no UTC type) are read coalesced
        got, _ = await asyncio.gather(reads.select(plain), reads.select(ORGANIZATION, {"org_id": given.org_id}))
    finally:
        await reads.close()

    # Then they carry the same zone psycopg gives (and a timestamp without one stays naive)
    assert _described(got) == _described(expected)
    assert str(got[0].at.tzinfo) == "America/New_York"
    assert got[0].local.tzinfo is None
