"""The engines: SQLite's (a file, WAL, writers queued at BEGIN) and PostgreSQL's
(a pool whose idle connections are checked before use, prepared statements
planned once, and a pool of its own for requests' reads, in autocommit).
database.Database and RequestDatabase take their connections from them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from select import POLLIN, poll
from typing import Any

from psycopg import _queries as psycopg_queries
from sqlalchemy import event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.engine.base import Engine, OptionEngine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, Pool, PoolProxiedConnection

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
