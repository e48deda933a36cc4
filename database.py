"""The async engine and sessions, for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from select import POLLIN, poll
from typing import Any, TypeVar

from psycopg import _queries as psycopg_queries
from sqlalchemy import event, select
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.engine.base import Engine, OptionEngine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, Pool, PoolProxiedConnection

from coalesce import (
    COALESCE_TURNS,
    Mismatch,
    RowLike,
    Shape,
    Statement,
    Waiting,
    combined,
    session_time_zone,
    shape_of,
    slot,
)
from driver import direct_form, driver_of, fetch_one
from settings import Settings

T = TypeVar("T")

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


# A pooled PostgreSQL connection idle longer than this is pinged before use (below).
PING_AFTER_IDLE_S = 1.0
_CHECKED_IN = "personagraph_checked_in"


def _checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _sent_something(dbapi_connection: Any) -> bool:
    """Whether the server wrote to a connection no one is using (a poll of its socket, no round
    trip): nothing comes to an idle connection unless the server ends it (its FATAL message and
    the socket's end, as when an administrator or a restart terminates it) or, rarely, a notice."""
    try:
        socket = poll()
        socket.register(dbapi_connection.driver_connection.fileno(), POLLIN)
        return bool(socket.poll(0))
    except Exception:  # no socket to ask (closed): as good as a message
        return True


def _ping_if_idle(dialect: Dialect) -> Callable[[Any, ConnectionPoolEntry, PoolProxiedConnection], None]:
    """Pessimistic disconnect handling for connections that sat idle, optimistic for the rest.

    pool_pre_ping pings on every checkout: a round trip per request (~0.3 ms here, a
    third of a one-row search's round trips). A connection back in use within a second
    is taken as is; one idle longer (the database may have restarted, a proxy may
    have dropped it) is pinged as pool_pre_ping would (the dialect's ping, outside any
    transaction), and a dead one replaced before anyone uses it. A connection that died
    within that second is pinged too when the server said something on it since (a
    terminated backend's last words: _sent_something); one that died silently fails its
    first statement, which invalidates the pool (SQLAlchemy's disconnect handling), and
    the request's authentication read tries once more on a fresh connection
    (read_once_more_if_stale)."""

    def ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        idle_since = record.info.get(_CHECKED_IN)
        if idle_since is None:
            return
        if time.monotonic() - idle_since < PING_AFTER_IDLE_S and not _sent_something(dbapi_connection):
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: the pool connects anew
            raise DisconnectionError from exc
        if not alive:
            raise DisconnectionError

    return ping_if_idle


async def read_once_more_if_stale(
    read: Callable[[], AbstractAsyncContextManager[AsyncConnection]], work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """`work` on a read connection; tried once more on a fresh one when the first turned out
    dead (its failure invalidated the pool: see _ping_if_idle). For a request's first read."""
    try:
        async with read() as conn:
            return await work(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with read() as conn:
        return await work(conn)


async def select_rows(
    conn: AsyncConnection, statement: Statement, params: Mapping[str, Any] | None = None
) -> list[RowLike]:
    """The statement's rows on this connection. On psycopg in autocommit, a statement with
    named parameters (a loader's, built once) goes straight to the driver as its JSON form
    (coalesce.slot: the rows and values SQLAlchemy's path gives, as CoalescedRows), made
    once: past SQLAlchemy's execution (driver.py). Anything else goes through SQLAlchemy."""
    params = params or {}
    shape = shape_of(statement, conn.dialect) if driver_of(conn) is not None else None
    if shape is not None and shape.named:
        column, renames = slot(statement, shape, 0)
        (text,) = await one_row(conn, combined([column]), {renames[k]: v for k, v in params.items() if k in renames})
        try:
            return shape.rows(text, session_time_zone(conn))
        except (Mismatch, ValueError, TypeError, OverflowError):
            pass  # never a guess: the statement again, as it is
    return list((await conn.execute(statement, params)).all())


async def one_row(conn: AsyncConnection, statement: Statement, params: Mapping[str, Any]) -> tuple[Any, ...]:
    """The statement's only row: straight through psycopg where it can go (driver.py)."""
    driver = driver_of(conn)
    form = direct_form(statement, conn.dialect) if driver is not None else None
    if driver is not None and form is not None:
        return await fetch_one(conn, driver, form, params)
    return tuple((await conn.execute(statement, params)).one())


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
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_recycle=1800,
        connect_args={"options": _with_generic_plans(url.query.get("options"))},
    )
    event.listen(engine.sync_engine, "checkin", _checked_in)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle(engine.dialect))
    _convert_long_statements_once()
    return engine


class _ReadEngine(OptionEngine):
    """The engine's requests' reads (RequestDatabase): the same dialect, statement cache and
    event listeners (an OptionEngine's), over a pool of its own (the engine's, recreated: same
    size, same pool events) whose connections are put in autocommit once, when made. Checked
    out of the engine's pool with `isolation_level="AUTOCOMMIT"`, a connection had its level
    set on every checkout and reset on every return, each through SQLAlchemy's greenlet:
    ~280 µs of CPU a request against ~120 (a request reads on one connection)."""

    def __init__(self, proxied: Engine) -> None:
        super().__init__(proxied, {READ_ONLY: True})
        self._pool = proxied.pool.recreate()
        event.listen(self._pool, "connect", self._autocommit)

    def _autocommit(self, dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        self.dialect.set_isolation_level(dbapi_connection, "AUTOCOMMIT")

    @property
    def pool(self) -> Pool:
        return self._pool

    @pool.setter
    def pool(self, pool: Pool) -> None:  # Engine.dispose() recreates it
        self._pool = pool


_READS = "_personagraph_reads"


def read_engine(engine: AsyncEngine) -> AsyncEngine | None:
    """PostgreSQL: the engine for requests' reads (_ReadEngine), one per engine, whichever
    Databases share it. SQLite: None (reads take the engine's connections, each marked read-only)."""
    if engine.dialect.name == "sqlite":
        return None
    reads: AsyncEngine | None = getattr(engine.sync_engine, _READS, None)
    if reads is None:
        reads = AsyncEngine(_ReadEngine(engine.sync_engine))
        setattr(engine.sync_engine, _READS, reads)
    return reads


def _with_generic_plans(options: str | tuple[str, ...] | None) -> str:
    """The connection's server options, with prepared statements planned once (generic plans).

    psycopg prepares a statement the fifth time its text comes back; PostgreSQL's default then
    keeps planning it per execution while its generic plan's estimate looks dearer than the
    custom plans'. The coalesced reads bind each loader's keys as one array (models.base.OneOf),
    whose generic estimate assumes more keys than a card's one persona: they were planned anew
    every time, ~6 ms of PostgreSQL's CPU per card (of ~10). The statements here are lookups by
    key and keyset pages, whose plan does not depend on the values."""
    given = " ".join(options) if isinstance(options, tuple) else (options or "")
    return f"{given} -c plan_cache_mode=force_generic_plan".strip()


def _convert_long_statements_once() -> None:
    """psycopg converts a statement's `%(name)s` placeholders to `$n` by a regular expression,
    and remembers the result only for statements up to 4 KB with at most 50 parameters
    (against ORMs' ever-different multi-row INSERTs). A card's coalesced statements are
    5-16 KB with 27-56 parameters, the same few texts again and again: without this they were
    converted anew every request (0.3 ms of a card). Its cache stays bounded (128 texts)."""
    psycopg_queries.MAX_CACHED_STATEMENT_LENGTH = max(psycopg_queries.MAX_CACHED_STATEMENT_LENGTH, 32 * 1024)
    psycopg_queries.MAX_CACHED_STATEMENT_PARAMS = max(psycopg_queries.MAX_CACHED_STATEMENT_PARAMS, 128)


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

    def __init__(self, engine: AsyncEngine, *, reads_per_request: int = 1, coalesce_reads: bool = True) -> None:
        self.engine = engine
        self.reads_per_request = reads_per_request
        self.coalesce_reads = coalesce_reads
        self.sessions = session_factory(engine)
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.read_engine = read_engine(engine)

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

    async def select(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[RowLike]:
        """The statement's rows, read through read() (a request's reads coalesce: RequestDatabase.select)."""
        async with self.read() as conn:
            return await select_rows(conn, statement, params)

    def enqueue(self, statement: Statement, params: Mapping[str, Any] | None = None) -> Awaitable[list[RowLike]]:
        """select() started now, to be awaited later: statements enqueued one after the other
        without a wait between them go out together where reads coalesce."""
        return asyncio.ensure_future(self.select(statement, params))

    def for_request(self) -> RequestDatabase:
        """The same database for one request, whose reads share one connection."""
        return RequestDatabase(self)

    async def dispose(self) -> None:
        if self.read_engine is not None:
            await self.read_engine.dispose()
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
    take a session of their own (`session()`), and a read after a commit sees it.

    Reads through `select()` are coalesced on PostgreSQL (COALESCE_READS, on by default):
    the statements a request issues in the same event-loop tick (sibling fields resolve
    together, so a card's loaders and history pages do; a read waits COALESCE_TURNS turns
    of the loop for the others) go out as ONE statement, each as
    a scalar subquery whose rows come back as the text of a JSON array of arrays (json_agg
    keeps each statement's ORDER BY), one round trip and one driver call for them all.
    Each caller gets the values the normal path gives (from the columns' types; a column
    type with no exact JSON form makes its statement run on its own) as CoalescedRows,
    in the statement's order. When the combined statement fails, every caller gets the
    error. On SQLite, with coalescing off, or alone in its tick, a statement runs as is."""

    def __init__(self, parent: Database) -> None:
        self.engine = parent.engine
        self.sessions = parent.sessions
        self.is_sqlite = parent.is_sqlite
        self.reads_per_request = parent.reads_per_request
        self.coalesce_reads = parent.coalesce_reads and not parent.is_sqlite
        self.read_engine = parent.read_engine
        self._free = asyncio.Semaphore(self.reads_per_request)
        self._idle: list[AsyncConnection] = []
        self._open: list[AsyncConnection] = []
        self._waiting: list[Waiting] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def _connect(self) -> AsyncConnection:
        if self.read_engine is not None:  # PostgreSQL: in autocommit, read-only, from the start
            connection = await self.read_engine.connect()
        else:
            raw = await self.engine.connect()
            try:
                connection = await raw.execution_options(**{READ_ONLY: True})
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

    async def select(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[RowLike]:
        shape = shape_of(statement, self.engine.dialect) if self.coalesce_reads else None
        if shape is None:
            return await super().select(statement, params)
        return await self._coalesced(statement, params, shape)

    def enqueue(self, statement: Statement, params: Mapping[str, Any] | None = None) -> Awaitable[list[RowLike]]:
        shape = shape_of(statement, self.engine.dialect) if self.coalesce_reads else None
        if shape is None:
            return super().enqueue(statement, params)
        return self._coalesced(statement, params, shape)

    def _coalesced(
        self, statement: Statement, params: Mapping[str, Any] | None, shape: Shape
    ) -> asyncio.Future[list[RowLike]]:
        """The statement among the reads going out together; its rows when they are in."""
        loop = asyncio.get_running_loop()
        waiting = Waiting(statement, params or {}, shape, loop.create_future())
        self._waiting.append(waiting)
        if len(self._waiting) == 1:
            loop.call_soon(self._flush_after, COALESCE_TURNS)
        return waiting.future

    def _flush_after(self, turns: int) -> None:
        if turns > 1:
            asyncio.get_running_loop().call_soon(self._flush_after, turns - 1)
        else:
            self._flush()

    def _flush(self) -> None:
        batch = [waiting for waiting in self._waiting if not waiting.future.done()]
        self._waiting = []
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

        def abandoned(_: object) -> None:
            # Every caller is gone (the request was cut off): the statement is stopped,
            # and read() takes its connection out of use.
            if all(waiting.future.cancelled() for waiting in batch):
                task.cancel()

        for waiting in batch:
            waiting.future.add_done_callback(abandoned)

    async def _send(self, batch: list[Waiting]) -> None:
        try:
            if len(batch) == 1:
                batch[0].settle(await super().select(batch[0].statement, batch[0].params))
                return
            columns, params = [], dict[str, Any]()
            for index, waiting in enumerate(batch):
                column, renames = slot(waiting.statement, waiting.shape, index)
                columns.append(column)
                params.update((renames[key], value) for key, value in waiting.params.items() if key in renames)
            async with self.read() as conn:
                # Only slots built once (named parameters) recur: other combinations are new each time.
                statement = combined(columns) if all(w.shape.named for w in batch) else select(*columns)
                texts = await one_row(conn, statement, params)
                tz = session_time_zone(conn)
            alone = []
            for waiting, text in zip(batch, texts, strict=True):
                try:
                    rows = waiting.shape.rows(text, tz)
                except (Mismatch, ValueError, TypeError, OverflowError):
                    alone.append(waiting)  # never a guess: that statement again, on its own
                    continue
                waiting.settle(rows)
            for waiting in alone:
                waiting.settle(await super().select(waiting.statement, waiting.params))
        except BaseException as exc:
            for waiting in batch:
                if waiting.future.done():
                    continue
                if isinstance(exc, Exception):
                    waiting.future.set_exception(exc)
                else:
                    waiting.future.cancel()
            if not isinstance(exc, Exception):
                raise

    async def close(self) -> None:
        for waiting in self._waiting:
            waiting.future.cancel()
        self._waiting = []
        for task in list(self._flushing):
            task.cancel()
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)
        connections, self._open, self._idle = self._open, [], []
        for connection in connections:
            await connection.close()
