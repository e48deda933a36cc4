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

import base64
import binascii
import csv
import datetime as dt
import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from database import Database
from models import Consent, PersonaRollup, PersonaTag, SignupSubmission, Store
from models.base import UTCDateTime
from models.enums import Channel, OptInStatus
from permissions.matrix import Permission
from resolvers.search_sql import PERSONAS, CompiledSearch

ROLLUPS = PersonaRollup.__table__  # type: ignore[attr-defined]
STORES = Store.__table__  # type: ignore[attr-defined]
TAGS = PersonaTag.__table__  # type: ignore[attr-defined]
CONSENTS = Consent.__table__  # type: ignore[attr-defined]
SIGNUPS = SignupSubmission.__table__  # type: ignore[attr-defined]
P = PERSONAS.c

# The stream is handed on in chunks of about this many bytes (a few hundred rows).
CSV_CHUNK_BYTES = 64 * 1024
# SQLite: rows per fetch from the cursor.
SQLITE_FETCH_ROWS = 2000
# Signatures are images of a few kilobytes each: small batches keep memory flat.
SIGNATURE_BATCH = 100
# What a spreadsheet reads as the start of a formula (OWASP's list adds tab and CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SIGNATURE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg", "image/webp": "webp"}
TAG_SEPARATOR = "; "


def _sql_text(value: str) -> ColumnElement[str]:
    """A constant string written into the statement (not a parameter: it stays one cached statement)."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


QUOTE = _sql_text("'")
FORMULA_CODES: list[ColumnElement[Any]] = [literal_column(str(ord(c))) for c in FORMULA_STARTS]


class Cells:
    """SQL that gives each CSV cell as text (NULL for an empty cell), in one dialect's functions."""

    def __init__(self, *, sqlite: bool) -> None:
        self.sqlite = sqlite
        # PostgreSQL reads a persona's tags and consents once each, as lateral rows its cells refer to.
        self.laterals = [] if sqlite else [_tag_row(), _consent_row()]

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
        utc = func.timezone(_sql_text("UTC"), column)
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
            return self.text(self.laterals[0].c.tags)
        # SQLite's BINARY collation is code point order; group_concat keeps the subquery's order.
        mine = and_(TAGS.c.org_id == P.org_id, TAGS.c.persona_id == P.id)
        ordered = select(TAGS.c.tag).where(mine).order_by(TAGS.c.tag).correlate(PERSONAS).subquery()
        return self.text(select(func.group_concat(ordered.c.tag, _sql_text(TAG_SEPARATOR))).scalar_subquery())

    def consent(self, channel: Channel) -> ColumnElement[str]:
        if not self.sqlite:
            status: Any = self.laterals[1].c[channel.value]
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


def _tag_row() -> Any:
    """PostgreSQL: the persona's tags in one cell, in code point order (the C collation)."""
    by_code_point = aggregate_order_by(_sql_text(TAG_SEPARATOR), TAGS.c.tag.collate("C"))
    tags = func.string_agg(TAGS.c.tag, by_code_point).label("tags")
    return select(tags).where(TAGS.c.org_id == P.org_id, TAGS.c.persona_id == P.id).lateral("tag_row")


def _consent_row() -> Any:
    """PostgreSQL: the persona's status per channel, from one index range of consents."""
    statuses = (
        func.max(CONSENTS.c.status).filter(CONSENTS.c.channel == _sql_text(channel.value)).label(channel.value)
        for channel in Channel
    )
    return select(*statuses).where(CONSENTS.c.org_id == P.org_id, CONSENTS.c.persona_id == P.id).lateral("consent_row")


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


def csv_select(columns: list[ExportColumn], search: CompiledSearch, *, sqlite: bool) -> Select[Any]:
    """One statement: the search's personas, newest first, each as its cells."""
    cells = Cells(sqlite=sqlite)
    personas = PERSONAS.outerjoin(ROLLUPS, and_(ROLLUPS.c.org_id == P.org_id, ROLLUPS.c.persona_id == P.id))
    personas = personas.outerjoin(STORES, and_(STORES.c.org_id == P.org_id, STORES.c.id == P.favorite_store_id))
    for lateral in cells.laterals:
        personas = personas.join(lateral, true())  # an aggregate: always one row
    return (
        select(*(column.cell(cells).label(column.name) for column in columns))
        .select_from(personas)
        .where(*search.conditions)
        .order_by(P.created_at.desc(), P.id.desc())
    )


def _header(columns: list[ExportColumn]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([c.name for c in columns])
    return buffer.getvalue().encode()


async def stream_csv(db: Database, search: CompiledSearch, permissions: Iterable[Permission]) -> AsyncIterator[bytes]:
    """The CSV file (UTF-8, header row first) in chunks of about CSV_CHUNK_BYTES."""
    columns = columns_for(permissions)
    yield _header(columns)
    async with db.read() as conn:
        sqlite = conn.dialect.name == "sqlite"
        stmt = csv_select(columns, search, sqlite=sqlite)
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
    lines: list[bytes] = []
    size = 0
    async with driver.cursor() as cursor, cursor.copy(copy_out, params) as copy:
        async for row in copy:
            # A CopyData message is exactly one row, ending in LF (a newline inside a value is quoted).
            lines.append(bytes(row[:-1]))
            size += len(row)
            if size >= CSV_CHUNK_BYTES:
                lines.append(b"")
                yield b"\r\n".join(lines)
                lines, size = [], 0
    if lines:
        lines.append(b"")
        yield b"\r\n".join(lines)


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


# ------------------------------------------------------------ signatures


def signature_image(data_url: str) -> tuple[bytes, str] | None:
    """The image bytes and file extension of a data: URL, or None when it is not one."""
    header, sep, payload = data_url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        return None
    extension = SIGNATURE_TYPES.get(header[len("data:") : -len(";base64")].lower())
    if extension is None:
        return None
    try:
        return base64.b64decode(payload, validate=True), extension
    except (binascii.Error, ValueError):
        return None


class _ChunkSink(io.RawIOBase):
    """What zipfile writes to: collects bytes until the stream takes them."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def _after(cursor: tuple[dt.datetime, uuid.UUID] | None) -> list[Any]:
    """Rows after the cursor, newest first (the Personas page order)."""
    if cursor is None:
        return []
    t, i = literal(cursor[0], UTCDateTime()), literal(cursor[1])
    return [or_(P.created_at < t, and_(P.created_at == t, P.id < i))]


async def _persona_batch(
    conn: AsyncConnection, search: CompiledSearch, cursor: tuple[dt.datetime, uuid.UUID] | None, size: int
) -> list[Any]:
    stmt = (
        select(P.id, P.number, P.created_at)
        .where(*search.conditions, *_after(cursor))
        .order_by(P.created_at.desc(), P.id.desc())
        .limit(size)
    )
    return list((await conn.execute(stmt)).all())


async def _latest_signatures(conn: AsyncConnection, org_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    stmt = (
        select(SIGNUPS.c.persona_id, SIGNUPS.c.signature)
        .where(SIGNUPS.c.org_id == org_id, SIGNUPS.c.persona_id.in_(ids), SIGNUPS.c.signature.is_not(None))
        .order_by(SIGNUPS.c.submitted_at, SIGNUPS.c.id)
    )
    # Later submissions overwrite earlier ones: the newest signature wins.
    return {row.persona_id: row.signature for row in await conn.execute(stmt)}


async def stream_signatures_zip(db: Database, org_id: uuid.UUID, search: CompiledSearch) -> AsyncIterator[bytes]:
    """A ZIP of each found persona's newest sign-up signature, named <persona number>.<ext>."""
    signed = P.id.in_(select(SIGNUPS.c.persona_id).where(SIGNUPS.c.org_id == org_id, SIGNUPS.c.signature.is_not(None)))
    with_signature = CompiledSearch([*search.conditions, signed], None)
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        cursor: tuple[dt.datetime, uuid.UUID] | None = None
        while True:
            async with db.read() as conn:
                personas = await _persona_batch(conn, with_signature, cursor, SIGNATURE_BATCH)
                signatures = await _latest_signatures(conn, org_id, [p.id for p in personas]) if personas else {}
            for persona in personas:
                image = signature_image(signatures.get(persona.id, ""))
                if image is not None:
                    archive.writestr(f"{persona.number}.{image[1]}", image[0])
            yield sink.take()
            if len(personas) < SIGNATURE_BATCH:
                break
            cursor = (personas[-1].created_at, personas[-1].id)
    yield sink.take()
