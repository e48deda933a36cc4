"""The async engine and sessions, for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from settings import Settings

# How long a SQLite statement waits for a lock, and (in slices) a writer for the write lock.
BUSY_TIMEOUT_MS = 10_000
WRITE_LOCK_WAIT_MS = 50


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; the busy timeout makes a
    # second writer wait instead of failing; SQLite leaves FKs off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY = "personagraph_read_only"


def _begin(conn: Any) -> None:
    # A writer takes the lock when its transaction begins, not at its first
    # write, so two writers queue instead of failing at the lock upgrade;
    # readers (loaders) stay deferred and never wait. Readers run each
    # statement in autocommit: no BEGIN round trip at all.
    if conn.get_execution_options().get(READ_ONLY):
        return
    # A writer queued behind another waits in short busy waits, each its own
    # await, up to the busy timeout in all: one long wait inside SQLite could
    # not be cut off by the request time limit (an asyncio timeout) before it
    # ended. Cut off, the writer has written nothing, and its connection is
    # closed (which ends a BEGIN that won the lock meanwhile): no lock stays.
    conn.exec_driver_sql(f"PRAGMA busy_timeout={WRITE_LOCK_WAIT_MS}")
    give_up = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            break
        except OperationalError as e:
            if "database is locked" not in str(e.orig) or time.monotonic() >= give_up:
                raise
    conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def create_engine(settings: Settings, *, echo: bool = False) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, poolclass=NullPool, connect_args={"timeout": 10})
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "connect", _sqlite_pragmas)
        # pysqlite's own BEGIN handling would start deferred transactions.
        event.listen(sync_engine, "connect", lambda c, _r: setattr(c, "isolation_level", None))
        event.listen(sync_engine, "begin", _begin)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def sync_url(database_url: str) -> str:
    """The same database through a synchronous driver, for Alembic and COPY."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite").render_as_string(hide_password=False)
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


class Database:
    """The engine and the two ways to use it: a write session per mutation,
    and short read-only connections for loaders (one per batch, so sibling
    fields that resolve concurrently never share a connection)."""

    def __init__(self, engine: AsyncEngine, *, reads_per_request: int = 1) -> None:
        self.engine = engine
        self.reads_per_request = reads_per_request
        self.sessions = session_factory(engine)
        self.is_sqlite = engine.dialect.name == "sqlite"

    def session(self) -> AsyncSession:
        return self.sessions()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as raw:
            conn = await raw.execution_options(**{READ_ONLY: True})
            try:
                yield conn
            finally:
                await conn.rollback()

    def for_request(self) -> RequestDatabase:
        """The same database for one request, whose reads share one connection."""
        return RequestDatabase(self)

    async def dispose(self) -> None:
        await self.engine.dispose()


class RequestDatabase(Database):
    """One request's view of the database: its reads (authentication, every loader
    batch, history pages and counts) take turns on ONE connection, checked out on the
    first read and returned by `close()` when the response is ready.

    A card asks for ~30 batches; a connection each meant ~30 pool checkouts (each
    with its liveness ping) and on PostgreSQL a BEGIN and a ROLLBACK around every
    statement. Here the pool is visited once per request and on PostgreSQL the
    connection runs in autocommit, so each statement is one round trip. Reads are
    single statements, so autocommit loses no consistency they had. Writes still
    take a session of their own (`session()`), and a read after a commit sees it."""

    def __init__(self, parent: Database) -> None:
        self.engine = parent.engine
        self.sessions = parent.sessions
        self.is_sqlite = parent.is_sqlite
        self.reads_per_request = parent.reads_per_request
        self._free = asyncio.Semaphore(self.reads_per_request)
        self._idle: list[AsyncConnection] = []
        self._open: list[AsyncConnection] = []

    async def _connect(self) -> AsyncConnection:
        raw = await self.engine.connect()
        options: dict[str, Any] = {READ_ONLY: True}
        if not self.is_sqlite:
            options["isolation_level"] = "AUTOCOMMIT"
        try:
            connection = await raw.execution_options(**options)
        except BaseException:
            await raw.close()
            raise
        self._open.append(connection)
        return connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._free:
            connection = self._idle.pop() if self._idle else await self._connect()
            try:
                yield connection
            except (asyncio.CancelledError, DBAPIError, OSError):
                # A statement that failed in the driver or was cut off by the time limit may
                # leave the connection mid-protocol: it goes back invalid, never to another read.
                self._open.remove(connection)
                await connection.invalidate()
                await connection.close()
                raise
            except BaseException:
                self._idle.append(connection)  # a domain error of the caller's: the connection is fine
                raise
            self._idle.append(connection)

    async def close(self) -> None:
        connections, self._open, self._idle = self._open, [], []
        for connection in connections:
            await connection.close()
