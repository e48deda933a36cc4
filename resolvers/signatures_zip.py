"""The signatures export: a ZIP of the latest sign-up signature image of each
persona a search finds, streamed in batches so memory stays flat (the archive is
written to a sink the response drains as it goes)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import (
    and_,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from database import Database
from models.base import UTCDateTime
from models.tables import PERSONAS, SIGNUPS
from resolvers.search_sql import CompiledSearch

P = PERSONAS.c
# Signatures are images of a few kilobytes each: small batches keep memory flat.
SIGNATURE_BATCH = 100
SIGNATURE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg", "image/webp": "webp"}


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
