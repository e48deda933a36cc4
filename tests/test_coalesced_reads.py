"""Coalesced reads: on PostgreSQL the reads a request issues in the same event-loop tick
go out as ONE statement (database.RequestDatabase.select), and every caller gets exactly
the rows the normal path gives: the same values of the same Python types, in the same
order, under the same keys. On SQLite, and with coalescing off, each read runs as is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    TypeDecorator,
    Uuid,
    cast,
    column,
    event,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    union_all,
)
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import SQLModel

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
from models.base import new_id
from models.tables import PERSONAS
from resolvers.audiences import AUDIENCES_OF
from resolvers.history import HistoryKind, history_counts, history_json_page, history_page
from resolvers.pagination import Cursor, PageRequest, Selection
from tests.conftest import GraphQLClient, StatementCounter
from tests.test_history import FIELDS, given_history

CARD = (Path(__file__).resolve().parent.parent / "operations" / "card.graphql").read_text()
TABLES: list[Table] = list(SQLModel.metadata.sorted_tables)
TEXT = "Zoë 🌿 “quoted” 'single' \\ back ñ 中文\n\ttab \u00a0nbsp"
JSON_DOCUMENT = {
    "big": 2**70,
    "negative": -(2**65),
    "float": 0.1,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "text": TEXT,
    "null": None,
    "list": [1, "two", None, True, False, {"nested": [], "b": 1, "a": 2}],
}


# ---------------------------------------------------------------- given


class EveryColumn:
    """Two rows in every table, made straight into the tables: one with every column
    filled (unicode, the int4 extremes, JSON with big integers and floats, times with
    microseconds given in a non-UTC offset) and one with every nullable column null."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.made: dict[str, dict[str, dict[str, Any]]] = {}

    def value(self, col: Any, full: bool) -> Any:
        n = next(self.counter)
        kind = col.type.impl if isinstance(col.type, TypeDecorator) else col.type
        if isinstance(kind, Uuid):
            return new_id()
        if isinstance(kind, String):
            text = f"{n}·{TEXT}"
            return text[: kind.length] if kind.length else text * 3
        if isinstance(kind, Boolean):
            return full
        if isinstance(kind, Integer):
            return 2**31 - 1 - n if full else -(2**31) + n
        if isinstance(kind, DateTime):
            india = dt.timezone(dt.timedelta(hours=5, minutes=30))
            at = dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=india)
            return (at if full else dt.datetime(1970, 1, 2, tzinfo=dt.UTC)) + dt.timedelta(seconds=n)
        if isinstance(kind, Date):
            return dt.date(2024, 2, 29) if full else dt.date(1900, 1, 1)
        if isinstance(kind, JSON):
            return {**JSON_DOCUMENT, "n": n} if full else None  # None: the JSON document null
        raise AssertionError(f"no test value for {col.table.name}.{col.name} ({col.type!r})")

    def row(self, tbl: Table, variant: str) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for col in tbl.c:
            if col.nullable and variant == "nulls":
                row[col.name] = None
            elif col.foreign_keys:
                targets = [fk.column for fk in col.foreign_keys]
                target = next((t for t in targets if t.table is not tbl), targets[0])
                if target.table.name == "organizations":
                    source = self.made["organizations"]["full"]  # every tenant row in one organization
                elif target.table is tbl:
                    source = self.made[tbl.name]["nulls"]
                else:
                    source = self.made[target.table.name][variant]
                row[col.name] = source[target.name]
            else:
                row[col.name] = self.value(col, variant == "full")
        return row

    async def fill(self, db: Database) -> None:
        async with db.engine.begin() as conn:
            for tbl in TABLES:
                self.made[tbl.name] = {}
                for variant in ("nulls", "full"):
                    row = self.row(tbl, variant)
                    await conn.execute(insert(tbl), [row])
                    self.made[tbl.name][variant] = row

    def ids(self, name: str, column_name: str = "id") -> list[Any]:
        return [self.made[name]["full"][column_name], self.made[name]["nulls"][column_name]]

    @property
    def org_id(self) -> uuid.UUID:
        org_id: uuid.UUID = self.made["organizations"]["full"]["id"]
        return org_id


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


@contextmanager
def counting(statements: StatementCounter) -> Iterator[StatementCounter]:
    statements.count = 0
    statements.active = True
    try:
        yield statements
    finally:
        statements.active = False


@contextmanager
def coalescing(db: Database, on: bool) -> Iterator[None]:
    before = db.coalesce_reads
    db.coalesce_reads = on
    try:
        yield
    finally:
        db.coalesce_reads = before


# SQLite reads are never coalesced: these run on PostgreSQL only (the backend fixture, narrowed).
POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


# ---------------------------------------------------------------- (a) exact rows


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


# ---------------------------------------------------------------- (b) one statement


async def test_three_reads_of_one_tick_go_out_as_one_statement(
    db: Database, org: Organization, statements: StatementCounter, backend: str
) -> None:
    # Given three personas
    given = EveryColumn()
    await given.fill(db)
    org_id, (full, nulls) = given.org_id, given.ids("personas")
    tagged = {"org_id": org_id, "keys": [full]}

    # When a request reads three different statements at once
    reads = db.for_request()
    try:
        with counting(statements):
            persona, tags, organization = await asyncio.gather(
                reads.select(select(PERSONAS).where(PERSONAS.c.org_id == org_id, PERSONAS.c.id == nulls)),
                reads.select(TAGS_OF, tagged),
                reads.select(ORGANIZATION, {"org_id": org_id}),
            )
    finally:
        await reads.close()

    # Then PostgreSQL got one statement (SQLite three), and each caller its own rows
    assert statements.count == (1 if backend == "postgresql" else 3)
    assert [p.id for p in persona] == [nulls]
    assert [t.tag for t in tags] == [given.made["persona_tags"]["full"]["tag"]]
    assert [o.id for o in organization] == [org_id]


async def test_a_read_alone_in_its_tick_is_one_statement_with_the_normal_paths_rows_and_coalescing_off_runs_each(
    db: Database, org: Organization, statements: StatementCounter, backend: str
) -> None:
    params = {"org_id": org.id}
    reads = db.for_request()
    try:
        with counting(statements):
            alone = await reads.select(ORGANIZATION, params)
        assert statements.count == 1  # the engine's listeners hear of it on the direct path too
    finally:
        await reads.close()
    async with db.engine.connect() as conn:
        normal = (await conn.execute(ORGANIZATION, params)).all()
    assert [tuple(row) for row in alone] == [tuple(row) for row in normal]
    assert [row._mapping for row in alone] == [dict(row._mapping) for row in normal]
    # On PostgreSQL it went straight to psycopg as its JSON form (driver.py); SQLite runs it as it is.
    assert [type(row).__name__ for row in alone] == ["CoalescedRow" if backend == "postgresql" else "Row"]
    # A connection outside autocommit keeps SQLAlchemy's path: its transaction stays SQLAlchemy's.
    assert [type(row).__name__ for row in await db.select(ORGANIZATION, params)] == ["Row"]

    with coalescing(db, on=False):
        reads = db.for_request()
        try:
            with counting(statements):
                both = await asyncio.gather(reads.select(ORGANIZATION, params), reads.select(DISCOUNTS_OF_ORG, params))
        finally:
            await reads.close()
    assert statements.count == 2
    assert [row.id for row in both[0]] == [org.id]


@POSTGRESQL_ONLY
async def test_a_repeated_combination_is_compiled_once(
    db: Database, org: Organization, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    compiled: list[int] = []
    compile_statement = SQLCompiler.__init__

    def counting_compile(self: SQLCompiler, *args: Any, **kwargs: Any) -> None:
        compiled.append(1)
        compile_statement(self, *args, **kwargs)

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    monkeypatch.setattr(SQLCompiler, "__init__", counting_compile)
    params = {"org_id": org.id, "keys": [uuid.uuid4()]}
    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        for _ in range(2):
            compiled.clear()
            reads = db.for_request()
            try:
                await asyncio.gather(*(reads.select(s, params) for s in (ROLLUPS_OF, TAGS_OF, CONSENTS_OF)))
            finally:
                await reads.close()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)

    assert len(seen) == 2
    assert seen[0] == seen[1]  # the same text: psycopg prepares it once
    assert compiled == []  # the second time nothing was compiled


@POSTGRESQL_ONLY
async def test_a_listener_that_rewrites_a_statement_sent_straight_to_psycopg_is_obeyed(
    db: Database, org: Organization, backend: str
) -> None:
    # Given a listener that rewrites statements (retval=True), as SQLAlchemy lets it
    def rewrite(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> tuple[str, Any]:
        return statement + " WHERE 100 %% 7 = 0", params

    params = {"org_id": org.id}
    event.listen(db.engine.sync_engine, "before_cursor_execute", rewrite, retval=True)
    try:
        reads = db.for_request()
        try:
            # When a read goes straight to psycopg (its JSON form, one row), then the rewritten text runs
            # (its parameters and a literal % as in any statement): its added condition leaves no row
            with pytest.raises(NoResultFound):
                await reads.select(ORGANIZATION, params)
        finally:
            await reads.close()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", rewrite)
    # And without it the same read finds the organization
    reads = db.for_request()
    try:
        assert [row.id for row in await reads.select(ORGANIZATION, params)] == [org.id]
    finally:
        await reads.close()


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


# ---------------------------------------------------------------- (d) errors


async def test_a_failing_read_fails_every_read_it_went_out_with_and_the_next_request_works(
    db: Database, org: Organization, backend: str
) -> None:
    # Given a request that reads a table that does not exist beside a good read
    missing = select(table("no_such_table", column("x", String)).c.x)
    good = (ORGANIZATION, {"org_id": org.id})
    reads = db.for_request()
    try:
        # When both are read at once
        outcomes = await asyncio.gather(reads.select(missing), reads.select(*good), return_exceptions=True)

        # Then on PostgreSQL both callers get the error (they were one statement); on SQLite only the bad one
        assert isinstance(outcomes[0], DBAPIError)
        if backend == "postgresql":
            assert outcomes[1] is outcomes[0]
        else:
            assert [row.id for row in outcomes[1]] == [org.id]  # type: ignore[union-attr]

        # And the same request reads on
        again = await asyncio.gather(reads.select(*good), reads.select(DISCOUNTS_OF_ORG, {"org_id": org.id}))
        assert [row.id for row in again[0]] == [org.id]
    finally:
        await reads.close()

    # And so does the next request
    reads = db.for_request()
    try:
        assert [row.id for row in await reads.select(*good)] == [org.id]
    finally:
        await reads.close()


@POSTGRESQL_ONLY
async def test_a_request_cut_off_mid_read_leaves_no_connection_mid_statement(
    db: Database, org: Organization, backend: str
) -> None:
    slow = select(literal_column("pg_sleep(5) IS NULL", Boolean).label("slept"))
    reads = db.for_request()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await asyncio.gather(reads.select(slow), reads.select(ORGANIZATION, {"org_id": org.id}))
        # The same request's next reads run at once, on a fresh connection
        again = await asyncio.gather(
            reads.select(ORGANIZATION, {"org_id": org.id}), reads.select(DISCOUNTS_OF_ORG, {"org_id": org.id})
        )
        assert [row.id for row in again[0]] == [org.id]
        assert time.monotonic() - started < 3
    finally:
        await reads.close()


@POSTGRESQL_ONLY
async def test_a_statement_with_a_type_json_cannot_carry_exactly_runs_on_its_own(
    db: Database, org: Organization, statements: StatementCounter, backend: str
) -> None:
    # An integer whose PostgreSQL type is not known from here (a sum over a bind) is not guessed at
    unknown = select(func.sum(literal(5, Integer)).label("n"))
    reads = db.for_request()
    try:
        with counting(statements):
            summed, found = await asyncio.gather(
                reads.select(unknown),
                reads.select(ORGANIZATION, {"org_id": org.id}),
            )
    finally:
        await reads.close()
    assert statements.count == 2
    assert [tuple(r) for r in summed] == [(5,)]
    assert [r.id for r in found] == [org.id]


# ---------------------------------------------------------------- (c) the card


async def _card_with_everything(db: Database, org: Organization) -> str:
    history = await given_history(
        db,
        org,
        "+14155550177",
        first_name="Zoë",
        last_name="Ñúñez 中文",
        email="zoe@example.com",
        birthday=dt.date(1990, 2, 28),
        attributes=[("budtender", "Sam 🌿"), ("medical", "yes")],
        tags=["vip", "veteran"],
    )
    at = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    for n, name in enumerate(FIELDS * 2):
        await history.add(name, at - dt.timedelta(hours=n))
    async with db.session() as session, session.begin():
        session.add(
            SignupSubmission(
                org_id=org.id,
                persona_id=history.persona.id,
                form_name="Join “now”",
                url="https://example.com/join?x=1&y=ü",
                signature="data:image/png;base64,AAAA",
            )
        )
    return history.persona.gid


async def test_the_full_card_takes_far_fewer_statements_and_answers_the_same(
    owner_client: GraphQLClient, db: Database, org: Organization, statements: StatementCounter, backend: str
) -> None:
    # Given a persona with every kind of history, tags, attributes and a sign-up
    gid = await _card_with_everything(db, org)
    await owner_client.data(CARD, {"id": gid})  # warm up: the key's last-used time is written once a minute

    # When the full card is read with coalescing on, then off
    answers, counts = {}, {}
    for on in (True, False):
        with coalescing(db, on), counting(statements):
            answers[on] = await owner_client.execute(CARD, {"id": gid})
        counts[on] = statements.count

    # Then the answers are identical, and on PostgreSQL the card takes a fraction of the statements
    assert not answers[True].get("errors")
    assert not answers[False].get("errors")
    # The wallet and referral links carry tokens signed with the current second: not compared.
    for answer in answers.values():
        answer["data"]["persona"].pop("links")
    assert answers[True]["data"] == answers[False]["data"]
    assert answers[True]["data"]["persona"]["history"]["merges"]["totalCount"] == 2
    if backend == "postgresql":
        assert counts[True] <= 6, counts
        assert counts[False] >= 4 * counts[True], counts
    else:
        assert counts[True] == counts[False]
