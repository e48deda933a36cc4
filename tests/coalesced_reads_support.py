"""What the coalesced-reads tests share (tests/test_coalesced_reads_*.py): two rows
made straight into every table, counting a request's statements, switching
coalescing on or off, and the mark for tests that run on PostgreSQL only."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, String, Table, TypeDecorator, Uuid, insert
from sqlmodel import SQLModel

from database import Database
from models.base import new_id
from tests.conftest import StatementCounter

TABLES: list[Table] = list(SQLModel.metadata.sorted_tables)
TEXT = "Zoë 🌿 “quoted” 'single' \\ back ñ 中文\n\ttab \u00a0nbsp"
JSON_DOCUMENT = {
    "big": 2**70,
    "negative": -(2**65),
    "float": 0.1,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "text": TEXT,
    "null": None,
    "list": [1, "two", None, True, False, {"nested": [], "b": 1, "a": 2}],
}


class EveryColumn:
    """Two rows in every table, made straight into the tables: one with every column
    filled (unicode, the int4 extremes, JSON with big integers and floats, times with
    microseconds given in a non-UTC offset) and one with every nullable column null."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.made: dict[str, dict[str, dict[str, Any]]] = {}

    def value(self, col: Any, full: bool) -> Any:
        n = next(self.counter)
        kind = col.type.impl if isinstance(col.type, TypeDecorator) else col.type
        if isinstance(kind, Uuid):
            return new_id()
        if isinstance(kind, String):
            text = f"{n}·{TEXT}"
            return text[: kind.length] if kind.length else text * 3
        if isinstance(kind, Boolean):
            return full
        if isinstance(kind, Integer):
            return 2**31 - 1 - n if full else -(2**31) + n
        if isinstance(kind, DateTime):
            india = dt.timezone(dt.timedelta(hours=5, minutes=30))
            at = dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=india)
            return (at if full else dt.datetime(1970, 1, 2, tzinfo=dt.UTC)) + dt.timedelta(seconds=n)
        if isinstance(kind, Date):
            return dt.date(2024, 2, 29) if full else dt.date(1900, 1, 1)
        if isinstance(kind, JSON):
            return {**JSON_DOCUMENT, "n": n} if full else None  # None: the JSON document null
        raise AssertionError(f"no test value for {col.table.name}.{col.name} ({col.type!r})")

    def row(self, tbl: Table, variant: str) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for col in tbl.c:
            if col.nullable and variant == "nulls":
                row[col.name] = None
            elif col.foreign_keys:
                targets = [fk.column for fk in col.foreign_keys]
                target = next((t for t in targets if t.table is not tbl), targets[0])
                if target.table.name == "organizations":
                    source = self.made["organizations"]["full"]  # every tenant row in one organization
                elif target.table is tbl:
                    source = self.made[tbl.name]["nulls"]
                else:
                    source = self.made[target.table.name][variant]
                row[col.name] = source[target.name]
            else:
                row[col.name] = self.value(col, variant == "full")
        return row

    async def fill(self, db: Database) -> None:
        async with db.engine.begin() as conn:
            for tbl in TABLES:
                self.made[tbl.name] = {}
                for variant in ("nulls", "full"):
                    row = self.row(tbl, variant)
                    await conn.execute(insert(tbl), [row])
                    self.made[tbl.name][variant] = row

    def ids(self, name: str, column_name: str = "id") -> list[Any]:
        return [self.made[name]["full"][column_name], self.made[name]["nulls"][column_name]]

    @property
    def org_id(self) -> uuid.UUID:
        org_id: uuid.UUID = self.made["organizations"]["full"]["id"]
        return org_id


@contextmanager
def counting(statements: StatementCounter) -> Iterator[StatementCounter]:
    statements.count = 0
    statements.active = True
    try:
        yield statements
    finally:
        statements.active = False


@contextmanager
def coalescing(db: Database, on: bool) -> Iterator[None]:
    before = db.coalesce_reads
    db.coalesce_reads = on
    try:
        yield
    finally:
        db.coalesce_reads = before


# SQLite reads are never coalesced: these run on PostgreSQL only (the backend fixture, narrowed).
POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
