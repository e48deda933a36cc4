"""CSV and signature exports, streamed in keyset batches so memory stays flat
however many personas there are.

The columns follow the viewer's field permissions exactly as the card does
(a column is there only if the viewer may see that field), and every cell
that a spreadsheet would read as a formula is escaped.
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

from sqlalchemy import Row, and_, func, literal, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from database import Database
from models import Consent, PersonaRollup, PersonaTag, SignupSubmission, Store
from models.base import UTCDateTime
from models.enums import Channel, OptInStatus
from permissions.matrix import Permission
from resolvers.amounts import cents_to_decimal
from resolvers.search_sql import PERSONAS, CompiledSearch

ROLLUPS = PersonaRollup.__table__  # type: ignore[attr-defined]
STORES = Store.__table__  # type: ignore[attr-defined]
TAGS = PersonaTag.__table__  # type: ignore[attr-defined]
CONSENTS = Consent.__table__  # type: ignore[attr-defined]
SIGNUPS = SignupSubmission.__table__  # type: ignore[attr-defined]
P = PERSONAS.c

CSV_BATCH = 1000
# Signatures are images of a few kilobytes each: smaller batches keep memory flat.
SIGNATURE_BATCH = 100
# What a spreadsheet reads as the start of a formula (OWASP's list adds tab and CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SIGNATURE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg", "image/webp": "webp"}


@dataclass(frozen=True)
class ExportRow:
    persona: Row[Any]
    tags: list[str]
    consents: dict[str, str]


@dataclass(frozen=True)
class ExportColumn:
    name: str
    permission: Permission | None
    value: Callable[[ExportRow], object]


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _consent(channel: Channel) -> ExportColumn:
    return ExportColumn(
        f"consent_{channel.value.lower()}",
        None,
        lambda r: r.consents.get(channel.value, OptInStatus.UNKNOWN.value),
    )


# In the order they appear in the file; README.md ("CSV export") documents each.
COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("number", None, lambda r: r.persona.number),
    ExportColumn("first_name", None, lambda r: r.persona.first_name),
    ExportColumn("last_name", None, lambda r: r.persona.last_name),
    ExportColumn("email", Permission.VIEW_CONTACT, lambda r: r.persona.email),
    ExportColumn("phone", Permission.VIEW_CONTACT, lambda r: r.persona.phone),
    ExportColumn("birthday", Permission.VIEW_CONTACT, lambda r: _iso(r.persona.birthday)),
    ExportColumn("source", None, lambda r: r.persona.source_kind),
    ExportColumn("integration", None, lambda r: r.persona.source_name),
    ExportColumn("source_id", None, lambda r: r.persona.source_id),
    ExportColumn("favorite_store", None, lambda r: r.persona.favorite_store),
    ExportColumn("loyalty_member", None, lambda r: "true" if r.persona.loyalty_member else "false"),
    ExportColumn("loyalty_signup_at", None, lambda r: _iso(r.persona.loyalty_signup_at)),
    ExportColumn("created_at", None, lambda r: _iso(r.persona.created_at)),
    ExportColumn("archived_at", None, lambda r: _iso(r.persona.archived_at)),
    ExportColumn("tags", None, lambda r: "; ".join(r.tags)),
    *(_consent(channel) for channel in Channel),
    ExportColumn("points", Permission.VIEW_POINTS, lambda r: r.persona.points_balance or 0),
    ExportColumn("orders", Permission.VIEW_SHOPPING, lambda r: r.persona.orders_count or 0),
    ExportColumn("spent", Permission.VIEW_SHOPPING, lambda r: cents_to_decimal(r.persona.spend_total_cents or 0)),
    ExportColumn("last_order_at", Permission.VIEW_SHOPPING, lambda r: _iso(r.persona.last_order_at)),
    ExportColumn("browser", Permission.VIEW_TECHNICAL_TRAITS, lambda r: r.persona.browser),
    ExportColumn("ip_address", Permission.VIEW_TECHNICAL_TRAITS, lambda r: r.persona.ip_address),
)


def columns_for(permissions: Iterable[Permission]) -> list[ExportColumn]:
    """The columns a viewer with these permissions may export."""
    held = set(permissions)
    return [c for c in COLUMNS if c.permission is None or c.permission in held]


def csv_cell(value: object) -> str:
    """The cell as text, with a leading ' where a spreadsheet would start a formula."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _after(cursor: tuple[dt.datetime, uuid.UUID] | None) -> list[Any]:
    """Rows after the cursor, newest first (the Personas page order)."""
    if cursor is None:
        return []
    t, i = literal(cursor[0], UTCDateTime()), literal(cursor[1])
    return [or_(P.created_at < t, and_(P.created_at == t, P.id < i))]


# Joins a persona's tags, and its channel=status pairs, inside one cell of the batch query.
_SEPARATOR = "\x1f"


def _aggregated(column: Any, table: Any) -> Any:
    """One persona's values of `column`, joined by _SEPARATOR: a correlated subquery on the table's key."""
    return (
        select(func.aggregate_strings(column, _SEPARATOR))
        .where(table.c.org_id == P.org_id, table.c.persona_id == P.id)
        .scalar_subquery()
    )


async def _persona_batch(
    conn: AsyncConnection, search: CompiledSearch, cursor: tuple[dt.datetime, uuid.UUID] | None, size: int
) -> list[Any]:
    """One statement per batch: the personas with their rollup figures, store, tags and consents."""
    consent = CONSENTS.c.channel.concat(literal_column("'='")).concat(CONSENTS.c.status)
    stmt = (
        select(
            PERSONAS,
            ROLLUPS.c.points_balance,
            ROLLUPS.c.orders_count,
            ROLLUPS.c.spend_total_cents,
            ROLLUPS.c.last_order_at,
            STORES.c.name.label("favorite_store"),
            _aggregated(TAGS.c.tag, TAGS).label("tag_list"),
            _aggregated(consent, CONSENTS).label("consent_list"),
        )
        .select_from(PERSONAS)
        .outerjoin(ROLLUPS, and_(ROLLUPS.c.org_id == P.org_id, ROLLUPS.c.persona_id == P.id))
        .outerjoin(STORES, and_(STORES.c.org_id == P.org_id, STORES.c.id == P.favorite_store_id))
        .where(*search.conditions, *_after(cursor))
        .order_by(P.created_at.desc(), P.id.desc())
        .limit(size)
    )
    return list((await conn.execute(stmt)).all())


def _export_row(row: Any) -> ExportRow:
    tags = sorted(row.tag_list.split(_SEPARATOR)) if row.tag_list else []
    pairs = (pair.partition("=") for pair in row.consent_list.split(_SEPARATOR)) if row.consent_list else ()
    return ExportRow(row, tags, {channel: status for channel, _, status in pairs})


async def _export_rows(db: Database, search: CompiledSearch) -> AsyncIterator[list[ExportRow]]:
    """The search's personas in batches; each batch reads on its own short connection."""
    cursor: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        async with db.read() as conn:
            personas = await _persona_batch(conn, search, cursor, CSV_BATCH)
        if not personas:
            return
        yield [_export_row(p) for p in personas]
        if len(personas) < CSV_BATCH:
            return
        cursor = (personas[-1].created_at, personas[-1].id)


async def stream_csv(db: Database, search: CompiledSearch, permissions: Iterable[Permission]) -> AsyncIterator[bytes]:
    """The CSV file (UTF-8, header row first), one chunk per batch."""
    columns = columns_for(permissions)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    yield buffer.getvalue().encode()
    async for batch in _export_rows(db, search):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerows([csv_cell(c.value(row)) for c in columns] for row in batch)
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
