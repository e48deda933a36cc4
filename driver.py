"""A read statement sent straight to psycopg, past SQLAlchemy's execution.

For every execution SQLAlchemy works out the statement's cache key (a walk over it,
then a hash of the nested tuple it makes), sets up an execution context, asks the
driver for the result's description and builds a result over it, and crosses into a
greenlet and back. For the few statements a request runs again and again (the card's
key lookup, its persona and its combined read of 40 columns and 50 parameters) here a
statement is compiled once (its SQL text, the values of parameters given in it, and
how each parameter is bound, as SQLAlchemy's execution binds them) and each execution
is one psycopg call whose row comes back as a plain tuple. Measured in instructions
per card (callgrind, deterministic where wall time here drifts by 30%): 28.1M -> 26.0M.

Only what this path reproduces exactly takes it: a statement SQLAlchemy would send as
it is compiled (no expanding or literal-execute parameters, no positional or escaped
names, no schema translation), on a connection in autocommit (SQLAlchemy keeps no
transaction there to fall out of step with). Anything else goes through SQLAlchemy.
The engine's before/after_cursor_execute listeners hear of every statement here too,
and a driver error goes through SQLAlchemy's own error handling, as on the normal path."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util.concurrency import greenlet_spawn

from coalesce import Statement

# What SQLAlchemy's psycopg dialect writes for a parameter (pyformat) and for a literal %.
_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s|%%")


def _numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """The SQL with `$n` for each named parameter (numbered by first use) and `%` for `%%`, and
    the parameters' names in their numbers' order."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        return "%" if name is None else f"${order.setdefault(name, len(order) + 1)}"

    return _PLACEHOLDER.sub(number, sql).encode(), tuple(order)


@dataclass(frozen=True)
class DirectForm:
    """A statement as psycopg takes it: its SQL, its compiled form (for the values of
    parameters given in the statement) and each parameter's bind processor; and the SQL
    as PostgreSQL takes it (`$1`, `$2`... in place of the named parameters, in `order`),
    sent by a raw cursor. psycopg converts named parameters itself, but keeps the
    conversion only for statements up to 4 KB and 50 parameters: the card's combined
    read (~20 KB, 60 parameters) was parsed again on every execution (~0.2-0.4 ms)."""

    sql: str
    compiled: SQLCompiler
    processors: Mapping[str, Callable[[Any], Any]]
    numbered: bytes
    order: tuple[str, ...]

    @classmethod
    def of(cls, compiled: SQLCompiler, processors: Mapping[str, Callable[[Any], Any]]) -> DirectForm:
        return cls(compiled.string, compiled, processors, *_numbered(compiled.string))

    def parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values = self.compiled.construct_params(dict(params), escape_names=False)
        processors = self.processors
        return {key: processors[key](value) if key in processors else value for key, value in values.items()}


_forms: WeakKeyDictionary[Statement, DirectForm | None] = WeakKeyDictionary()


def direct_form(statement: Statement, dialect: Dialect) -> DirectForm | None:
    """The statement's direct form on psycopg, made once per statement; None when only
    SQLAlchemy's execution sends it as it should be (or the dialect is not psycopg's)."""
    try:
        return _forms[statement]
    except KeyError:
        pass
    form = None
    if dialect.driver == "psycopg":
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if not (
            compiled.literal_execute_params
            or compiled.post_compile_params
            or compiled.positional
            or compiled.escaped_bind_names
            or compiled.schema_translate_map
        ):
            processors: Mapping[str, Callable[[Any], Any]] = compiled._bind_processors  # type: ignore[assignment]
            form = DirectForm.of(compiled, processors)
    _forms[statement] = form
    return form


def driver_of(conn: AsyncConnection) -> psycopg.AsyncConnection[Any] | None:
    """The connection's psycopg connection when statements may go to it directly: in
    autocommit, where SQLAlchemy keeps no transaction of its own to be out of step with."""
    if conn.dialect.driver != "psycopg" or conn.sync_connection is None:
        return None
    driver: psycopg.AsyncConnection[Any] = conn.sync_connection.connection.driver_connection  # type: ignore[assignment]
    return driver if driver.autocommit else None


async def fetch_one(
    conn: AsyncConnection, driver: psycopg.AsyncConnection[Any], form: DirectForm, params: Mapping[str, Any]
) -> tuple[Any, ...]:
    """The statement's only row, as a tuple of what psycopg loads. The engine's
    before/after_cursor_execute listeners hear of it as of any statement (with the
    psycopg cursor and no execution context)."""
    sync = conn.sync_connection
    assert sync is not None
    sql, values = form.sql, form.parameters(params)
    try:
        async with psycopg.AsyncRawCursor(driver) as cursor:
            if sync._has_events or sync.engine._has_events:
                for listener in sync.dispatch.before_cursor_execute:
                    sql, values = listener(sync, cursor, sql, values, None, False)
            numbered, order = (form.numbered, form.order) if sql is form.sql else _numbered(sql)  # rewritten?
            await cursor.execute(numbered, [values[name] for name in order])
            row = await cursor.fetchone()
            if sync._has_events or sync.engine._has_events:
                sync.dispatch.after_cursor_execute(sync, cursor, sql, values, None, False)
    except psycopg.Error as exc:
        # SQLAlchemy's own handling, as for a statement it sent: the DBAPIError subclass, the
        # engine's handle_error listeners, and on a broken connection the connection and the
        # pool's older connections invalidated (its rollback needs the greenlet: raises always).
        await greenlet_spawn(sync._handle_dbapi_exception, exc, sql, values, None, None)
        raise  # pragma: no cover - the line above raised
    if row is None:
        raise NoResultFound("No row was found when one was required")  # as Result.one() says it
    return tuple(row)
