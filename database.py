"""Databases and their sessions and reads, over an engine of engines.py (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

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
from engines import READ_ONLY, read_engine, session_factory

T = TypeVar("T")


async def read_once_more_if_stale(
    read: Callable[[], AbstractAsyncContextManager[AsyncConnection]], work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """`work` on a read connection; tried once more on a fresh one when the first turned out
    dead (its failure invalidated the pool: see engines._ping_if_idle). For a request's first read."""
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
