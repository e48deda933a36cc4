"""INSERT ... ON CONFLICT for the session's database: PostgreSQL and SQLite both
have it, each through its own SQLAlchemy dialect construct."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Result, Table, Text, bindparam, cast, column, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import UTCDateTime


def is_sqlite(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "sqlite"


def insert_on_conflict(session: AsyncSession, table: Table) -> Any:
    """An INSERT with on_conflict_do_nothing / on_conflict_do_update and `excluded`."""
    return sqlite_insert(table) if is_sqlite(session) else pg_insert(table)


def _check_times(table: Table, names: list[str], rows: Sequence[dict[str, Any]]) -> None:
    """Aware datetimes only, as models.base.UTCDateTime insists (orjson writes them with their offset)."""
    for name in names:
        if isinstance(table.c[name].type, UTCDateTime):
            for row in rows:
                value = row[name]
                if value is not None and value.tzinfo is None:
                    raise ValueError("naive datetime given; every time is timezone-aware UTC")


async def insert_rows(session: AsyncSession, stmt: Any, rows: Sequence[dict[str, Any]]) -> Result[Any] | None:
    """Execute an INSERT (with its ON CONFLICT and RETURNING, if any) for many rows at once.

    PostgreSQL: one statement, INSERT ... SELECT ... FROM jsonb_to_recordset(:rows) AS x(col type, ...),
    the rows sent as one JSON parameter (orjson, in C). SQLAlchemy's executemany would send one INSERT
    per row, its multi-row VALUES pages bind rows x columns parameters, and unnest() arrays make
    psycopg quote every element in Python: measured here for 500 personas, the client's time went
    from 60-140 ms (VALUES) and 24 ms (arrays) to 5 ms, the server's from 28 ms (arrays) to 36 ms.
    SQLite: sqlite3's executemany, a C loop over one prepared statement."""
    if not rows:
        return None
    if is_sqlite(session):
        executed: Result[Any] = await session.execute(stmt, list(rows))
        return executed
    names = list(rows[0])
    table = stmt.table
    _check_times(table, names, rows)
    payload = orjson.dumps(rows).decode()
    records = (
        func.jsonb_to_recordset(cast(bindparam("rows", payload, type_=Text), JSONB))
        .table_valued(*(column(name, table.c[name].type) for name in names))
        .render_derived(name="x", with_types=True)
    )
    source: Any = select(*(records.c[name] for name in names))
    result: Result[Any] = await session.execute(stmt.from_select(names, source))
    return result
