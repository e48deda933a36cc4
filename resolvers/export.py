"""CSV and signature exports, streamed so memory stays flat however many
personas there are.

The CSV is one statement over the search's personas, newest first: the
database turns each persona into its cells (times in ISO 8601, money, the
persona's tags and consents, and the `'` that stops a spreadsheet from running
a cell as a formula), so Python never builds a row object. On PostgreSQL the
statement runs inside `COPY (...) TO STDOUT (FORMAT csv)`: the server writes
the CSV and the app forwards it (each CopyData message is one row, so its LF
becomes the CRLF of RFC 4180). On SQLite the cursor streams the cells and the
csv module writes them. Both give the same bytes.

The columns follow the viewer's field permissions exactly as the card does
(a column is there only if the viewer may see that field).
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from psycopg.generators import fetch_many
from psycopg.waiting import Wait
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from database import Database
from models import Consent, PersonaRollup, PersonaTag, Store
from models.enums import Channel, OptInStatus
from permissions.matrix import Permission
from resolvers.search_sql import PERSONAS, CompiledSearch

ROLLUPS = PersonaRollup.__table__  # type: ignore[attr-defined]
STORES = Store.__table__  # type: ignore[attr-defined]
TAGS = PersonaTag.__table__  # type: ignore[attr-defined]
CONSENTS = Consent.__table__  # type: ignore[attr-defined]
P = PERSONAS.c

# The stream is handed on in chunks of about this many bytes (a few hundred rows).
CSV_CHUNK_BYTES = 64 * 1024
# SQLite: rows per fetch from the cursor.
SQLITE_FETCH_ROWS = 2000
# What a spreadsheet reads as the start of a formula (OWASP's list adds tab and CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TAG_SEPARATOR = "; "
# PostgreSQL: from this share of the organization's personas on, an export aggregates the whole
# organization's tags and consents once (hash joins) rather than per found persona (index lookups).
SETWISE_SHARE = 0.5


def _sql_text(value: str) -> ColumnElement[str]:
    """A constant string written into the statement (not a parameter: it stays one cached statement)."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


QUOTE = _sql_text("'")
FORMULA_CODES: list[ColumnElement[Any]] = [literal_column(str(ord(c))) for c in FORMULA_STARTS]


class Cells:
    """SQL that gives each CSV cell as text (NULL for an empty cell), in one dialect's functions."""

    def __init__(self, *, sqlite: bool, org_id: uuid.UUID | None = None, setwise: bool = False) -> None:
        self.sqlite = sqlite
        # PostgreSQL reads the tags and consents as one row per persona that the cells refer to: the
        # organization's rows aggregated once and hash joined (set-wise), or per found persona (lateral).
        self.per_persona: list[Any] = []
        if not sqlite:
            if setwise:
                assert org_id is not None
                self.per_persona = [_setwise(_tag_row(), org_id), _setwise(_consent_row(), org_id)]
            else:
                self.per_persona = [_lateral(_tag_row()), _lateral(_consent_row())]

    def text(self, column: Any) -> ColumnElement[str]:
        """Free text: a leading formula character gets a `'`; an empty string is an empty cell."""
        if self.sqlite:
            # The csv module writes NULL and '' alike; `column` may be a subquery, so it is named twice only.
            escaped = QUOTE.concat(column)
            return case((func.unicode(column).in_(FORMULA_CODES), escaped), else_=type_coerce(column, String))
        # COPY writes '' as "" and NULL as nothing: an empty string becomes NULL, as the csv module writes it.
        return case(
            (func.ascii(column).in_(FORMULA_CODES), QUOTE.concat(column)),
            (column != _sql_text(""), type_coerce(column, String)),
            else_=null(),
        )

    def time(self, column: Any) -> ColumnElement[str]:
        """ISO 8601 in UTC as Python writes it: `2024-03-10T15:00:00+00:00`, microseconds only when there are some."""
        if self.sqlite:
            # Stored as naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'.
            with_t = func.replace(column, _sql_text(" "), _sql_text("T"))
            iso = func.replace(with_t, _sql_text(".000000"), _sql_text(""), type_=String)
            return iso.concat(_sql_text("+00:00"))
        # A zero offset (not the zone name 'UTC', which PostgreSQL parses again for every value).
        utc = func.timezone(literal_column("INTERVAL '0'"), column)
        written = func.to_char(utc, _sql_text('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))
        return func.replace(written, _sql_text(".000000+"), _sql_text("+"), type_=String)

    def date(self, column: Any) -> ColumnElement[str]:
        if self.sqlite:
            return type_coerce(column, String)
        return func.to_char(column, _sql_text("YYYY-MM-DD"), type_=String)

    def flag(self, column: Any) -> ColumnElement[str]:
        return case((column, _sql_text("true")), else_=_sql_text("false"))

    def count(self, column: Any) -> ColumnElement[str]:
        number = func.coalesce(column, literal_column("0"))
        written = cast(number, String)
        return case((number < literal_column("0"), QUOTE.concat(written)), else_=written)

    def money(self, cents_column: Any) -> ColumnElement[str]:
        """Cents as a decimal amount with two places, `22.00`."""
        cents = func.coalesce(cents_column, literal_column("0"))
        written: ColumnElement[str]
        if self.sqlite:
            written = func.printf(_sql_text("%.2f"), cents * literal_column("0.01"), type_=String)
        else:
            written = cast(cents * literal_column("0.01"), String)
        return case((cents < literal_column("0"), QUOTE.concat(written)), else_=written)

    def tags(self) -> ColumnElement[str]:
        """The persona's tags, sorted by code point as Python sorts them, joined by '; '."""
        if not self.sqlite:
            return self.text(self.per_persona[0].c.tags)
        # SQLite's BINARY collation is code point order; group_concat keeps the subquery's order.
        mine = and_(TAGS.c.org_id == P.org_id, TAGS.c.persona_id == P.id)
        ordered = select(TAGS.c.tag).where(mine).order_by(TAGS.c.tag).correlate(PERSONAS).subquery()
        return self.text(select(func.group_concat(ordered.c.tag, _sql_text(TAG_SEPARATOR))).scalar_subquery())

    def consent(self, channel: Channel) -> ColumnElement[str]:
        if not self.sqlite:
            status: Any = self.per_persona[1].c[channel.value]
        else:
            status = (
                select(CONSENTS.c.status)
                .where(
                    CONSENTS.c.org_id == P.org_id,
                    CONSENTS.c.persona_id == P.id,
                    CONSENTS.c.channel == _sql_text(channel.value),
                )
                .scalar_subquery()
            )
        return func.coalesce(status, _sql_text(OptInStatus.UNKNOWN.value), type_=String)


def _tag_row() -> Select[Any]:
    """PostgreSQL: a persona's tags in one cell, in code point order (the C collation)."""
    by_code_point = aggregate_order_by(_sql_text(TAG_SEPARATOR), TAGS.c.tag.collate("C"))
    return select(func.string_agg(TAGS.c.tag, by_code_point).label("tags")).select_from(TAGS)


def _consent_row() -> Select[Any]:
    """PostgreSQL: a persona's status per channel (one consent row per channel at most)."""
    statuses = (
        func.max(CONSENTS.c.status).filter(CONSENTS.c.channel == _sql_text(channel.value)).label(channel.value)
        for channel in Channel
    )
    return select(*statuses).select_from(CONSENTS)


def _lateral(aggregate: Select[Any]) -> Any:
    """The aggregate over one found persona's rows (an index range): always one row."""
    (table,) = aggregate.get_final_froms()
    return aggregate.where(table.c.org_id == P.org_id, table.c.persona_id == P.id).lateral()


def _setwise(aggregate: Select[Any], org_id: uuid.UUID) -> Any:
    """The aggregate over the organization's rows, one row per persona that has some."""
    (table,) = aggregate.get_final_froms()
    per_persona = aggregate.add_columns(table.c.persona_id).where(table.c.org_id == org_id)
    return per_persona.group_by(table.c.persona_id).subquery()


@dataclass(frozen=True)
class ExportColumn:
    name: str
    permission: Permission | None
    cell: Callable[[Cells], ColumnElement[Any]]


def _consent(channel: Channel) -> ExportColumn:
    return ExportColumn(f"consent_{channel.value.lower()}", None, lambda c: c.consent(channel))


# In the order they appear in the file; README.md ("CSV export") documents each.
COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("number", None, lambda c: P.number),
    ExportColumn("first_name", None, lambda c: c.text(P.first_name)),
    ExportColumn("last_name", None, lambda c: c.text(P.last_name)),
    ExportColumn("email", Permission.VIEW_CONTACT, lambda c: c.text(P.email)),
    ExportColumn("phone", Permission.VIEW_CONTACT, lambda c: c.text(P.phone)),
    ExportColumn("birthday", Permission.VIEW_CONTACT, lambda c: c.date(P.birthday)),
    ExportColumn("source", None, lambda c: P.source_kind),
    ExportColumn("integration", None, lambda c: c.text(P.source_name)),
    ExportColumn("source_id", None, lambda c: c.text(P.source_id)),
    ExportColumn("favorite_store", None, lambda c: c.text(STORES.c.name)),
    ExportColumn("loyalty_member", None, lambda c: c.flag(P.loyalty_member)),
    ExportColumn("loyalty_signup_at", None, lambda c: c.time(P.loyalty_signup_at)),
    ExportColumn("created_at", None, lambda c: c.time(P.created_at)),
    ExportColumn("archived_at", None, lambda c: c.time(P.archived_at)),
    ExportColumn("tags", None, lambda c: c.tags()),
    *(_consent(channel) for channel in Channel),
    ExportColumn("points", Permission.VIEW_POINTS, lambda c: c.count(ROLLUPS.c.points_balance)),
    ExportColumn("orders", Permission.VIEW_SHOPPING, lambda c: c.count(ROLLUPS.c.orders_count)),
    ExportColumn("spent", Permission.VIEW_SHOPPING, lambda c: c.money(ROLLUPS.c.spend_total_cents)),
    ExportColumn("last_order_at", Permission.VIEW_SHOPPING, lambda c: c.time(ROLLUPS.c.last_order_at)),
    ExportColumn("browser", Permission.VIEW_TECHNICAL_TRAITS, lambda c: c.text(P.browser)),
    ExportColumn("ip_address", Permission.VIEW_TECHNICAL_TRAITS, lambda c: c.text(P.ip_address)),
)


def columns_for(permissions: Iterable[Permission]) -> list[ExportColumn]:
    """The columns a viewer with these permissions may export."""
    held = set(permissions)
    return [c for c in COLUMNS if c.permission is None or c.permission in held]


def csv_select(
    columns: list[ExportColumn], search: CompiledSearch, *, sqlite: bool, org_id: uuid.UUID | None = None
) -> Select[Any]:
    """One statement: the search's personas, newest first, each as its cells.

    With `org_id` (PostgreSQL), the tags and consents of the whole organization are aggregated once
    and hash joined: for an export of most of the organization. Without, per found persona."""
    cells = Cells(sqlite=sqlite, org_id=org_id, setwise=org_id is not None)
    personas = PERSONAS.outerjoin(ROLLUPS, and_(ROLLUPS.c.org_id == P.org_id, ROLLUPS.c.persona_id == P.id))
    personas = personas.outerjoin(STORES, and_(STORES.c.org_id == P.org_id, STORES.c.id == P.favorite_store_id))
    for rows in cells.per_persona:
        if org_id is None:
            personas = personas.join(rows, true())  # a lateral aggregate: always one row
        else:
            personas = personas.outerjoin(rows, rows.c.persona_id == P.id)  # personas with none are kept
    return (
        select(*(column.cell(cells).label(column.name) for column in columns))
        .select_from(personas)
        .where(*search.conditions)
        .order_by(P.created_at.desc(), P.id.desc())
    )


async def exports_most_of_the_organization(conn: AsyncConnection, org_id: uuid.UUID, search: CompiledSearch) -> bool:
    """Whether the search finds at least SETWISE_SHARE of the organization's personas.

    Counted exactly but bounded by the export's own size: the found personas, then the
    organization's up to 1/SETWISE_SHARE times as many."""
    found = (await conn.execute(select(func.count()).where(*search.conditions).select_from(PERSONAS))).scalar_one()
    if not found:
        return False
    cap = math.ceil(found / SETWISE_SHARE) + 1
    some = select(literal_column("1")).select_from(PERSONAS).where(P.org_id == org_id).limit(cap).subquery()
    total = (await conn.execute(select(func.count()).select_from(some))).scalar_one()
    return bool(total < cap)


def _header(columns: list[ExportColumn]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([c.name for c in columns])
    return buffer.getvalue().encode()


async def stream_csv(
    db: Database, org_id: uuid.UUID, search: CompiledSearch, permissions: Iterable[Permission]
) -> AsyncIterator[bytes]:
    """The CSV file (UTF-8, header row first) in chunks of about CSV_CHUNK_BYTES."""
    columns = columns_for(permissions)
    yield _header(columns)
    async with db.read() as conn:
        sqlite = conn.dialect.name == "sqlite"
        setwise = not sqlite and await exports_most_of_the_organization(conn, org_id, search)
        stmt = csv_select(columns, search, sqlite=sqlite, org_id=org_id if setwise else None)
        rows = _written_rows(conn, stmt) if sqlite else _copied_rows(conn, stmt)
        try:
            async for chunk in rows:
                yield chunk
        except BaseException:
            # Cut off mid-stream (the client went away, or the driver failed): the connection may be
            # mid-COPY or already closed by the driver, so it goes back invalid, never to the next user.
            await conn.invalidate()
            raise


async def _copied_rows(conn: AsyncConnection, stmt: Select[Any]) -> AsyncIterator[bytes]:
    """PostgreSQL: COPY (stmt) TO STDOUT as CSV, with CRLF line ends."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    # What SQLAlchemy applies to each parameter before it executes a statement (e.g. UTCDateTime's checks).
    processors: dict[str, Any] = dict(compiled._bind_processors)
    for name, process in processors.items():
        if name in params and callable(process):
            params[name] = process(params[name])
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection  # psycopg's AsyncConnection
    # psycopg merges parameters into COPY on the client, turning SQLAlchemy's %% back into %.
    sql = compiled.string if params else compiled.string.replace("%%", "%")
    copy_out = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
    async with driver.cursor() as cursor, cursor.copy(copy_out, params):
        # Every row that has arrived is taken in one wait, not one wait (and one await) per row.
        reader = _CopyReader(driver.pgconn)
        while not reader.over:
            if block := await driver.wait(reader.block()):
                yield block


class _CopyReader:
    """Reads COPY TO STDOUT rows off libpq in blocks, with psycopg's wait protocol."""

    def __init__(self, pgconn: Any) -> None:
        self.pgconn = pgconn
        self.over = False

    def block(self) -> Generator[Any, Any, bytes]:
        """A wait generator: the rows already received (at least one, about CSV_CHUNK_BYTES at most)
        as CSV with CRLF line ends; at the end of the COPY, the last rows and its result read."""
        pgconn, rows, size = self.pgconn, list[memoryview](), 0
        while size < CSV_CHUNK_BYTES:
            nbytes, data = pgconn.get_copy_data(1)  # 1: do not block
            if nbytes > 0:
                rows.append(data)
                size += nbytes
            elif nbytes == 0 and rows:
                break  # the rest is still on its way: hand on what is here
            elif nbytes == 0:
                while not (yield Wait.R):
                    continue
                pgconn.consume_input()
            else:  # -1: the COPY is over; its command result follows
                self.over = True
                results = yield from fetch_many(pgconn)
                failed = [r for r in results if r.status != pq.ExecStatus.COMMAND_OK]
                if failed:
                    raise psycopg.errors.error_from_result(failed[0])
                break
        # A CopyData message is exactly one row ending in LF (a newline inside a value is quoted):
        # each LF that ends a message becomes CRLF, and only those.
        block = b"".join(rows)
        if block.count(b"\n") == len(rows):
            return block.replace(b"\n", b"\r\n")
        return b"".join(bytes(row[:-1]) + b"\r\n" for row in rows)


async def _written_rows(conn: AsyncConnection, stmt: Select[Any]) -> AsyncIterator[bytes]:
    """SQLite: the cursor's cells, written by the csv module."""
    result = await conn.stream(stmt.execution_options(yield_per=SQLITE_FETCH_ROWS))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    async for rows in result.partitions():
        writer.writerows(rows)
        if buffer.tell() >= CSV_CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
