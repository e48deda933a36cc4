"""Coalesced reads, errors: a failing read fails every read it went out with and
the request and the next one read on, a request cut off mid-read leaves no
connection mid-statement, and a statement whose types JSON cannot carry exactly
runs on its own. On SQLite each read runs as is.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import Boolean, Integer, String, column, func, literal, literal_column, select, table
from sqlalchemy.exc import DBAPIError

from database import Database
from loaders.card import DISCOUNTS_OF_ORG
from loaders.persona import ORGANIZATION
from models import Organization
from tests.coalesced_reads_support import POSTGRESQL_ONLY, counting
from tests.conftest import StatementCounter


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
