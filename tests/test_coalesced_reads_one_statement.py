"""Coalesced reads, one statement: on PostgreSQL the reads a request issues in the
same event-loop tick go out as ONE statement (database.RequestDatabase.select),
compiled once when the combination repeats, a read alone goes straight to psycopg,
and a listener that rewrites statements is obeyed. On SQLite, and with coalescing
off, each read runs as is.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler

from database import Database
from loaders.card import CONSENTS_OF, DISCOUNTS_OF_ORG, ROLLUPS_OF, TAGS_OF
from loaders.persona import ORGANIZATION
from models import Organization
from models.tables import PERSONAS
from tests.coalesced_reads_support import POSTGRESQL_ONLY, EveryColumn, coalescing, counting
from tests.conftest import StatementCounter


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
