"""Column types and helpers shared by every table.

Times are stored as UTC and always come back timezone-aware, on SQLite too;
ids are UUIDv7 made here, so rows sort by creation time without a sequence.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import uuid_utils
from sqlalchemy import ARRAY, Boolean, ColumnElement, DateTime, Dialect, any_, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType
from sqlalchemy.types import TypeDecorator


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that refuses naive datetimes and always reads back in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; every time is timezone-aware UTC")
        value = value.astimezone(dt.UTC)
        # SQLite has no time zones: keep naive UTC there so ordering stays textual.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class OneOf(ColumnElement[bool]):
    """`column IN (:name)` for a list of values bound under one name: on PostgreSQL
    `column = ANY(:name)`, one array parameter; elsewhere an expanding IN list.

    Chosen when the statement is compiled, so a statement built once serves both databases.
    With one array parameter a statement's text is the same whatever the number of values:
    SQLAlchemy does not render the list into the text per execution, psycopg converts the
    text once, and PostgreSQL plans a prepared statement once (a card's coalesced statements
    took 1.4-3 ms to plan when their IN lists made each text new)."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a comparison: no "= 1" after it where booleans are integers
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (SQLAlchemy reads it from the class)
        ("any_form", InternalTraversal.dp_clauseelement),
        ("in_form", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], name: str | None, values: Any = None) -> None:
        # Both forms hold a parameter of the same name; only the dialect's is rendered.
        self.in_form = column.in_(bindparam(name, values, expanding=True))
        self.any_form = column == any_(bindparam(name, values, type_=ARRAY(column.type)))


@compiles(OneOf)
def _expanding_in(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.in_form, **kw)


@compiles(OneOf, "postgresql")
def _any_array(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.any_form, **kw)


def one_of(column: ColumnElement[Any], name: str | None, values: Any = None) -> OneOf:
    """`column` is one of the values bound as `name` (or of `values`, for a statement built
    per use: `name` None)."""
    return OneOf(column, name, values)
