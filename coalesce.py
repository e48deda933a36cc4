"""Coalesced reads: the helpers `database.RequestDatabase.select` sends a request's
reads with.

On PostgreSQL, reads issued within a few event-loop turns of each other go out
as ONE statement: each read becomes a scalar subquery
`(SELECT coalesce(json_agg(json_build_array(t.c1, ...)), '[]') FROM (<read>) AS t)`
of one outer SELECT, its bind parameters renamed per slot (cached per statement
and slot), and its rows come back decoded to exactly the values and types the
driver gives for the same columns (timestamps in the session's time zone,
Decimal through text, UUIDs, JSON as is). A read whose columns cannot be
carried exactly (a type the statement does not show, an Enum, ARRAY or binary
column, more than 100 columns) has no shape and runs on its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import BindParameter, ColumnElement, Text, cast, func, literal_column, select
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import functions
from sqlalchemy.sql.elements import Cast, ColumnClause, Label, _anonymous_label
from sqlalchemy.sql.selectable import CompoundSelect, Select, SelectBase, TableClause
from sqlalchemy.sql.visitors import iterate, replacement_traverse

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


def row_of(keys: tuple[str, ...], values: Iterator[Any] | list[Any]) -> CoalescedRow:
    """A row with these column names and values, as `Database.select` gives them."""
    return _row_class(keys)(values)


class Mismatch(Exception):
    """A value was not of the form its column's type promised: that statement runs on its own."""


# A JSON value of one column (and the connection's time zone) -> the Python value the
# normal path gives. Each raises Mismatch (or ValueError) on a value of another form.
Decoder = Callable[[Any, dt.tzinfo], Any]

# PostgreSQL's type codes, given to the result processors as the driver's description would.
_OIDS = {"bool": 16, "int8": 20, "text": 25, "json": 114, "float8": 701, "date": 1082, "timestamp": 1114}
_OIDS |= {"timestamptz": 1184, "numeric": 1700, "uuid": 2950}


def _same(kind: type) -> Decoder:
    def decode(value: Any, _tz: dt.tzinfo) -> Any:
        if value is None or type(value) is kind:
            return value
        raise Mismatch

    return decode


def _parsed(parse: Callable[[str], Any]) -> Decoder:
    def decode(value: Any, _tz: dt.tzinfo) -> Any:
        if value is None:
            return None
        if type(value) is not str:
            raise Mismatch
        return parse(value)

    return decode


def _timestamp(value: Any, tz: dt.tzinfo) -> Any:
    # PostgreSQL writes a timestamptz with its offset in the session's time zone and a
    # timestamp without one; psycopg gives the first in the session's time zone.
    if value is None:
        return None
    if type(value) is not str or "T" not in value:  # a date's JSON has no time
        raise Mismatch
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


class JsonDocument(sqltypes.TypeDecorator[Any]):
    """A JSON object the statement builds for the response as it stands (a history node,
    resolvers/history_json.py): inside a coalesced read it stays JSON in the outer array,
    parsed with the rest, not carried as text and parsed again."""

    impl = sqltypes.JSON
    cache_ok = True


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
    if isinstance(type_, JsonDocument):
        return _same(dict), False
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
class Shape:
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
_shapes: WeakKeyDictionary[Statement, Shape | None] = WeakKeyDictionary()
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


def shape_of(statement: Statement, dialect: Dialect) -> Shape | None:
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
            shape = Shape(_row_class(keys), decoders, as_text, named)
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


def slot(statement: Statement, shape: Shape, slot: int) -> tuple[ColumnElement[Any], dict[str, str]]:
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


def combined(columns: list[ColumnElement[Any]]) -> Select[Any]:
    key = tuple(map(id, columns))
    found = _combinations.get(key)
    if found is None:
        if len(_combinations) >= MAX_COMBINATIONS:
            _combinations.clear()
        found = _combinations[key] = (columns, select(*columns))
    return found[1]


@dataclass
class Waiting:
    statement: Statement
    params: Mapping[str, Any]
    shape: Shape
    future: asyncio.Future[list[RowLike]]

    def settle(self, rows: list[RowLike]) -> None:
        if not self.future.done():
            self.future.set_result(rows)


def session_time_zone(conn: AsyncConnection) -> dt.tzinfo:
    """The time zone psycopg gives timestamptz values in on this connection."""
    assert conn.sync_connection is not None
    zone: dt.tzinfo = conn.sync_connection.connection.driver_connection.info.timezone  # type: ignore[union-attr]
    return zone
