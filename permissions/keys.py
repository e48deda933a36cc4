"""API keys: made by the CLI, shown once, stored as a SHA-256 hash with a
short prefix to find them by. Keys are 160 random bits, so a plain hash is
enough (no key stretching needed, and checking stays cheap)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from coalesce import RowLike, row_of
from database import select_rows
from models import ApiKey, Organization
from models.base import utcnow
from permissions.matrix import Role
from permissions.viewer import Viewer

KEY_PREFIX = "pgk"
API_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _split(raw_key: str) -> str | None:
    """The lookup prefix of a well-formed key, or None."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8 or len(parts[2]) < 20:
        return None
    return parts[1]


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


async def issue_key(session: AsyncSession, *, org_id: uuid.UUID, role: Role, name: str) -> IssuedKey:
    prefix = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(20)}"
    key = ApiKey(org_id=org_id, name=name, role=role.value, prefix=prefix, key_hash=_hash(plaintext))
    session.add(key)
    await session.flush()
    return IssuedKey(key=key, plaintext=plaintext)


ORGANIZATIONS = Organization.__table__  # type: ignore[attr-defined]
# The organization's columns beside the key's, under names of their own.
_ORG_LABEL = "key_organization_"
_ORG_COLUMNS = tuple(ORGANIZATIONS.c.keys())
# Built once: every request looks its key up with it, and its organization with it (one round trip;
# the request's organization loader starts with that row instead of a read of its own).
KEYS_BY_PREFIX = (
    select(API_KEYS, *(c.label(_ORG_LABEL + c.name) for c in ORGANIZATIONS.c))
    .join(ORGANIZATIONS, ORGANIZATIONS.c.id == API_KEYS.c.org_id)
    .where(API_KEYS.c.prefix == bindparam("prefix"))
)


@dataclass(frozen=True)
class Authenticated:
    viewer: Viewer
    needs_touch: bool
    # The viewer's organization row, as the organization loader reads it.
    organization: RowLike


async def authenticate(conn: AsyncConnection | AsyncSession, raw_key: str) -> Authenticated | None:
    """The viewer behind a key, or None for a malformed, unknown or revoked key."""
    prefix = _split(raw_key)
    if prefix is None:
        return None
    params = {"prefix": prefix}
    if isinstance(conn, AsyncConnection):
        rows = await select_rows(conn, KEYS_BY_PREFIX, params)
    else:
        rows = list((await conn.execute(KEYS_BY_PREFIX, params)).all())
    digest = _hash(raw_key)
    for key in rows:
        if hmac.compare_digest(key.key_hash, digest) and key.revoked_at is None:
            viewer = Viewer.for_key(org_id=key.org_id, role=Role(key.role), name=key.name, api_key_id=key.id)
            stale = key.last_used_at is None or utcnow() - key.last_used_at >= LAST_USED_RESOLUTION
            organization = row_of(
                tuple(ORGANIZATIONS.c.keys()), [key._mapping[_ORG_LABEL + c.name] for c in ORGANIZATIONS.c]
            )
            return Authenticated(viewer=viewer, needs_touch=stale, organization=organization)
    return None


class KeyCache:
    """The keys this process authenticated in the last `seconds`, by their hash, each with its
    viewer and organization row: a request with one is answered without the key's statement
    (a round trip and ~1 ms of CPU of a card's ~14). The price: a key revoked, or an
    organization's settings changed, by another process (the CLI) takes effect here within
    `seconds`. Unknown keys are not kept. `seconds` <= 0: every request reads its key."""

    def __init__(self, seconds: float, size: int = 1024) -> None:
        self.seconds = seconds
        self.size = size
        self._found: dict[str, tuple[float, Authenticated]] = {}

    async def authenticate(
        self, raw_key: str, read: Callable[[str], Awaitable[Authenticated | None]]
    ) -> Authenticated | None:
        """The viewer behind a key: kept, or `read(raw_key)` (then kept for `seconds`)."""
        if self.seconds <= 0:
            return await read(raw_key)
        digest, now = _hash(raw_key), time.monotonic()
        kept = self._found.get(digest)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1]
        found = await read(raw_key)
        self._found.pop(digest, None)
        if found is not None:
            while len(self._found) >= self.size:  # the oldest first: entries expire anyway
                del self._found[next(iter(self._found))]
            # Touched (when it needs to be) by this request: not by the ones the entry serves.
            self._found[digest] = (now, replace(found, needs_touch=False))
        return found


async def touch_key(session: AsyncSession, viewer: Viewer) -> None:
    """Record use; called at most once a minute per key, outside the request's reads."""
    now = utcnow()
    await session.execute(
        update(ApiKey)
        .where(
            col(ApiKey.org_id) == viewer.org_id,
            col(ApiKey.id) == viewer.api_key_id,
            (col(ApiKey.last_used_at).is_(None)) | (col(ApiKey.last_used_at) < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


async def list_keys(session: AsyncSession, org_id: uuid.UUID) -> list[ApiKey]:
    stmt = select(ApiKey).where(col(ApiKey.org_id) == org_id).order_by(col(ApiKey.created_at))
    return list((await session.execute(stmt)).scalars().all())


async def revoke_key(session: AsyncSession, prefix: str) -> ApiKey | None:
    key = (await session.execute(select(ApiKey).where(col(ApiKey.prefix) == prefix))).scalars().first()
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def organization_of(session: AsyncSession, viewer: Viewer) -> Organization:
    org = await session.get(Organization, viewer.org_id)
    assert org is not None, "a key's organization cannot disappear while the key exists"
    return org
