"""The async engine and sessions, for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import BindParameter, ColumnElement, Text, cast, event, func, literal_column, select
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import functions
from sqlalchemy.sql.elements import Cast, ColumnClause, Label, _anonymous_label
from sqlalchemy.sql.selectable import CompoundSelect, Select, SelectBase, TableClause
from sqlalchemy.sql.visitors import iterate, replacement_traverse

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


# ------------------------------------------------------------ coalesced reads

# What `Database.select` reads: a SELECT or a UNION of them.
Statement = Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]


class RowLike(Protocol):
    """A row of `Database.select`: a SQLAlchemy Row, or a CoalescedRow with the same keys and values."""

    def __getattr__(self, name: str) -> Any: ...

    def __getitem__(self, index: int) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class CoalescedRow(tuple[Any, ...]):
    """A row that came back inside a coalesced statement: a tuple whose items are also
    attributes named for the statement's columns, as on a Row (one class per column list)."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    def _asdict(self) -> dict[str, Any]:
        return self._mapping

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


_row_classes: dict[tuple[str, ...], type[CoalescedRow]] = {}


def _row_class(keys: tuple[str, ...]) -> type[CoalescedRow]:
    found = _row_classes.get(keys)
    if found is None:
        # As on a Row, the tuple's own methods (count, index) win over columns of those names.
        attributes: dict[str, Any] = {
            key: property(itemgetter(i)) for i, key in enumerate(keys) if not hasattr(CoalescedRow, key)
        }
        found = type("CoalescedRow", (CoalescedRow,), {"__slots__": (), "_fields": keys, **attributes})
        _row_classes[keys] = found
    return found


class _Mismatch(Exception):
    """A value was not of the form its column's type promised: that statement runs on its own."""


# A JSON value of one column (and the connection's time zone) -> the Python value the
# normal path gives. Each raises _Mismatch (or ValueError) on a value of another form.
Decoder = Callable[[Any, dt.tzinfo], Any]

# PostgreSQL's type codes, given to the result processors as the driver's description would.
_OIDS = {"bool": 16, "int8": 20, "text": 25, "json": 114, "float8": 701, "date": 1082, "timestamp": 1114}
_OIDS |= {"timestamptz": 1184, "numeric": 1700, "uuid": 2950}


def _same(kind: type) -> Decoder:
    def decode(value: Any, _tz: dt.tzinfo) -> Any:
        if value is None or type(value) is kind:
            return value
        raise _Mismatch

    return decode


def _parsed(parse: Callable[[str], Any]) -> Decoder:
    def decode(value: Any, _tz: dt.tzinfo) -> Any:
        if value is None:
            return None
        if type(value) is not str:
            raise _Mismatch
        return parse(value)

    return decode


def _timestamp(value: Any, tz: dt.tzinfo) -> Any:
    # PostgreSQL writes a timestamptz with its offset in the session's time zone and a
    # timestamp without one; psycopg gives the first in the session's time zone.
    if value is None:
        return None
    if type(value) is not str or "T" not in value:  # a date's JSON has no time
        raise _Mismatch
    time = dt.datetime.fromisoformat(value)
    return time if time.tzinfo is None else time.astimezone(tz)


def _declared(expr: ColumnElement[Any], *, integer: bool = False) -> bool:
    """Whether PostgreSQL reads the expression as the type SQLAlchemy gives it: a table's
    column (its DDL), a CAST, their max or min, a subquery's column over those; for an
    integer also count(*) and a sum over int2/int4 (a bigint; a sum over bigint is a
    numeric, which psycopg gives as a Decimal but JSON as an integer)."""
    while isinstance(expr, Label):
        expr = expr.element
    if isinstance(expr, Cast):
        return True
    if isinstance(expr, ColumnClause) and isinstance(expr.table, TableClause) and not expr.is_literal:
        return True
    if isinstance(expr, functions.max | functions.min):
        return all(_declared(arg, integer=integer) for arg in expr.clauses)
    if integer and isinstance(expr, functions.count):
        return True
    if integer and isinstance(expr, functions.sum):
        args = list(expr.clauses)
        return len(args) == 1 and not isinstance(args[0].type, sqltypes.BigInteger) and _declared(args[0])
    bases = [base for base in expr.base_columns if base is not expr]
    return bool(bases) and all(_declared(base, integer=integer) for base in bases)


def _text_literal(expr: ColumnElement[Any]) -> bool:
    while isinstance(expr, Label):
        expr = expr.element
    return isinstance(expr, ColumnClause) and expr.is_literal and expr.name.startswith("'")


def _leaf_columns(statement: SelectBase) -> list[list[ColumnElement[Any]]] | None:
    """The selected columns of each SELECT of the statement (several for a UNION)."""
    if isinstance(statement, CompoundSelect):
        leaves = [_leaf_columns(part) for part in statement.selects]
        return None if any(leaf is None for leaf in leaves) else [c for leaf in leaves if leaf for c in leaf]
    if isinstance(statement, Select):
        return [list(statement.selected_columns)]
    return None


# Per column type (the first that matches): how its JSON value decodes, the PostgreSQL
# type it is read as, and whether SQL casts it to text first, so that a numeric or a
# JSON document reaches Python as its exact text (JSON numbers would pass through a float).
_KINDS: list[tuple[type[sqltypes.TypeEngine[Any]], Decoder | None, str, bool]] = [
    (sqltypes.Boolean, _same(bool), "bool", False),
    (sqltypes.Integer, _same(int), "int8", False),
    (sqltypes.Float, _parsed(float), "float8", True),
    (sqltypes.Numeric, _parsed(Decimal), "numeric", True),
    (sqltypes.Enum, None, "text", False),  # its values may be PostgreSQL enum labels: not followed here
    (sqltypes.String, _same(str), "text", False),
    (sqltypes.Uuid, _parsed(uuid.UUID), "uuid", False),
    (sqltypes.DateTime, _timestamp, "timestamptz", False),
    (sqltypes.Date, _parsed(dt.date.fromisoformat), "date", False),
    (sqltypes.JSON, None, "json", True),
]


def _decoder(position: int, leaves: list[list[ColumnElement[Any]]], dialect: Dialect) -> tuple[Decoder, bool] | None:
    """How a column's JSON value becomes its Python value, and whether SQL casts it to text
    first; None when the column's type has no exact JSON form here."""
    type_ = leaves[0][position].type
    impl = type_
    while isinstance(impl, sqltypes.TypeDecorator):
        impl = impl.impl_instance
    if getattr(impl, "_variant_mapping", None):
        return None
    kind = next((k for k in _KINDS if isinstance(impl, k[0])), None)
    if kind is None:
        return None
    base, decode, type_name, as_text = kind
    expressions = [leaf[position] for leaf in leaves]
    # Only PostgreSQL's boolean comes as JSON true/false; other types are taken where their
    # PostgreSQL type is known from the statement (an expression's is not, in general).
    integer = base is sqltypes.Integer
    if base is not sqltypes.Boolean and not all(
        _declared(e, integer=integer) or (base is sqltypes.String and _text_literal(e)) for e in expressions
    ):
        return None
    if base is sqltypes.DateTime and not getattr(impl, "timezone", False):
        type_name = "timestamp"
    if base is sqltypes.JSON:
        # Through the deserializer psycopg itself is given, so big integers and floats stay exact.
        decode = _parsed(dialect._json_deserializer or json.loads)
    if decode is None:
        return None
    process = type_._cached_result_processor(dialect, _OIDS[type_name])
    if process is None:
        return decode, as_text
    decoded = decode

    def processed(value: Any, tz: dt.tzinfo) -> Any:
        return process(decoded(value, tz))

    return processed, as_text


@dataclass(frozen=True)
class _Shape:
    row: type[CoalescedRow]
    decoders: tuple[Decoder, ...]
    as_text: tuple[bool, ...]
    named: bool  # has parameters bound by name, which must be renamed per slot

    def rows(self, text: str, tz: dt.tzinfo) -> list[RowLike]:
        make, decoders = self.row, self.decoders
        return [
            make([decode(value, tz) for decode, value in zip(decoders, raw, strict=True)]) for raw in orjson.loads(text)
        ]


# Turns of the event loop (call_soon hops) a coalesced read waits for the others of its
# tick. A DataLoader's batch reads three turns after its first load(), while a history page
# reads at once: in four, the pages and the batches of the fields resolved beside them go
# together (the full card: 5 statements; 6 with two or three turns, 7 with one).
COALESCE_TURNS = 4
# json_build_array takes at most 100 arguments (PostgreSQL's FUNC_MAX_ARGS).
MAX_COALESCED_COLUMNS = 100
_shapes: WeakKeyDictionary[Statement, _Shape | None] = WeakKeyDictionary()
# A statement with named parameters (each loader's binds "org_id" and "keys") in slot n
# of a combined statement: renamed for the slot, built once per statement and slot (the
# loaders' statements live as long as the process). Keyed by id(): the entry holds the
# statement, so the id is not reused while it is here.
_slots: dict[tuple[int, int], tuple[Statement, ColumnElement[Any], dict[str, str]]] = {}
MAX_SLOT_CACHE = 2_000


def _keys(statement: Statement, dialect: Dialect) -> tuple[str, ...]:
    """The keys of the statement's rows on the normal path: a column's or label's name; an
    unnamed expression's key (count_1, anon_1) is the one its compiled form gives it."""
    keys = tuple(statement.selected_columns.keys())
    named = all(
        isinstance(c, Label | ColumnClause) and not isinstance(c.name, _anonymous_label)
        for c in statement.selected_columns
    )
    if named and len(set(keys)) == len(keys):
        return keys
    return tuple(entry.keyname for entry in statement.compile(dialect=dialect)._result_columns)


def _shape_of(statement: Statement, dialect: Dialect) -> _Shape | None:
    """How the statement's rows come back inside a combined statement; None when it must run alone."""
    try:
        return _shapes[statement]
    except KeyError:
        pass
    shape = None
    leaves = _leaf_columns(statement)
    keys = _keys(statement, dialect)
    if leaves and len(set(keys)) == len(keys) == len(leaves[0]) <= MAX_COALESCED_COLUMNS:
        found = [_decoder(position, leaves, dialect) for position in range(len(keys))]
        if all(f is not None for f in found):
            decoders = tuple(f[0] for f in found if f is not None)
            as_text = tuple(f[1] for f in found if f is not None)
            named = any(isinstance(e, BindParameter) and not e.unique for e in iterate(statement))
            shape = _Shape(_row_class(keys), decoders, as_text, named)
    _shapes[statement] = shape
    return shape


def _renamed(statement: Statement, slot: int) -> tuple[Statement, dict[str, str]]:
    renames: dict[str, str] = {}

    def rename(element: Any) -> Any:
        if isinstance(element, BindParameter) and not element.unique:
            renamed = element._clone(maintain_key=True)
            renamed.key = renamed._identifying_key = renamed._orig_key = renames.setdefault(
                element.key, f"{element.key}__{slot}"
            )
            return renamed
        return None

    renamed: Statement = replacement_traverse(statement, {}, rename)  # type: ignore[call-overload]
    return renamed, renames


def _slot(statement: Statement, shape: _Shape, slot: int) -> tuple[ColumnElement[Any], dict[str, str]]:
    """The statement as column n of a combined statement: its rows as the text of a JSON
    array of arrays, in the statement's order; and the new name of each named parameter
    (anonymous ones, a value given in the statement, never collide)."""
    if shape.named:
        found = _slots.get((id(statement), slot))
        if found is not None:
            return found[1], found[2]
        renamed, renames = _renamed(statement, slot)
    else:
        renamed, renames = statement, {}
    sub = renamed.subquery()
    values = [cast(column, Text) if text else column for column, text in zip(sub.c, shape.as_text, strict=True)]
    # json_agg takes the rows in the order the subquery gives them (its ORDER BY).
    rows = func.coalesce(cast(func.json_agg(func.json_build_array(*values)), Text), literal_column("'[]'"))
    column = select(rows).select_from(sub).scalar_subquery().label(f"s{slot}")
    if shape.named:
        if len(_slots) >= MAX_SLOT_CACHE:
            _slots.clear()
        _slots[(id(statement), slot)] = (statement, column, renames)
    return column, renames


# The combined statement of each combination of slots seen (a card's recurs): the same
# object again, so SQLAlchemy's cache key, memoized on it, is not worked out anew (a walk
# over every subquery); keyed by the slots' ids, held so the ids stay theirs.
_combinations: dict[tuple[int, ...], tuple[list[ColumnElement[Any]], Select[Any]]] = {}
MAX_COMBINATIONS = 500


def _combined(columns: list[ColumnElement[Any]]) -> Select[Any]:
    key = tuple(map(id, columns))
    found = _combinations.get(key)
    if found is None:
        if len(_combinations) >= MAX_COMBINATIONS:
            _combinations.clear()
        found = _combinations[key] = (columns, select(*columns))
    return found[1]


@dataclass
class _Waiting:
    statement: Statement
    params: Mapping[str, Any]
    shape: _Shape
    future: asyncio.Future[list[RowLike]]

    def settle(self, rows: list[RowLike]) -> None:
        if not self.future.done():
            self.future.set_result(rows)


def _session_time_zone(conn: AsyncConnection) -> dt.tzinfo:
    """The time zone psycopg gives timestamptz values in on this connection."""
    assert conn.sync_connection is not None
    zone: dt.tzinfo = conn.sync_connection.connection.driver_connection.info.timezone  # type: ignore[union-attr]
    return zone


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
            return list((await conn.execute(statement, params)).all())

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
        self._free = asyncio.Semaphore(self.reads_per_request)
        self._idle: list[AsyncConnection] = []
        self._open: list[AsyncConnection] = []
        self._waiting: list[_Waiting] = []
        self._flushing: set[asyncio.Task[None]] = set()

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

    async def select(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[RowLike]:
        shape = _shape_of(statement, self.engine.dialect) if self.coalesce_reads else None
        if shape is None:
            return await super().select(statement, params)
        loop = asyncio.get_running_loop()
        waiting = _Waiting(statement, params or {}, shape, loop.create_future())
        self._waiting.append(waiting)
        if len(self._waiting) == 1:
            loop.call_soon(self._flush_after, COALESCE_TURNS)
        return await waiting.future

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

    async def _send(self, batch: list[_Waiting]) -> None:
        try:
            if len(batch) == 1:
                batch[0].settle(await super().select(batch[0].statement, batch[0].params))
                return
            columns, params = [], dict[str, Any]()
            for slot, waiting in enumerate(batch):
                column, renames = _slot(waiting.statement, waiting.shape, slot)
                columns.append(column)
                params.update((renames[key], value) for key, value in waiting.params.items() if key in renames)
            async with self.read() as conn:
                # Only slots built once (named parameters) recur: other combinations are new each time.
                combined = _combined(columns) if all(w.shape.named for w in batch) else select(*columns)
                texts = (await conn.execute(combined, params)).one()
                tz = _session_time_zone(conn)
            alone = []
            for waiting, text in zip(batch, texts, strict=True):
                try:
                    rows = waiting.shape.rows(text, tz)
                except (_Mismatch, ValueError, TypeError, OverflowError):
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
