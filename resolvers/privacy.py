"""Privacy requests: opt a customer out of everything, or erase their data.

A request names a phone and/or an email. Both are normalized by the identity
rules and every persona of the organization holding either (by identity key)
is affected. The request row keeps only keyed hashes of the contacts.

- OPT_OUT: every channel becomes OPTED_OUT with source PRIVACY_REQUEST, and
  the hashes of the given contacts and of every contact the personas hold go
  on the suppression list, so no import or integration can opt them back in
  (resolvers/consent.py), even for a persona created later.
- DELETE_DATA: resolvers/privacy_erasure.py. Staff requests run at once; the
  public page first sends a one-time code (``start_deletion``) and erases
  only when the code comes back (``confirm_deletion``). Codes expire after
  CODE_TTL and die after MAX_CODE_ATTEMPTS wrong tries. A deletion leaves no
  suppression entry: a later contact with the same phone is a new customer.

Public-page requests are made for unknown contacts too (and codes sent to
them), so nothing the page does depends on whether the contact exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from models import IdentityKey, Organization, PrivacyRequest
from models.base import utcnow
from models.enums import Channel, ConsentSource, OptInStatus, PrivacyAction, PrivacyRequestStatus
from models.tables import REQUESTS, SUPPRESSIONS
from resolvers.consent import contact_hash, record_consent
from resolvers.errors import UserError, UserErrors
from resolvers.identity import ContactKeys, contact_keys
from resolvers.ingest import personas_for_keys
from resolvers.pagination import Cursor, Page, PageRequest, build_page, keyset_select
from resolvers.privacy_erasure import erase_personas
from settings import get_settings

CODE_TTL = dt.timedelta(minutes=15)
MAX_CODE_ATTEMPTS = 5
CODE_DIGITS = 6
PUBLIC_ACTOR = "public page"


@dataclass(frozen=True)
class Outcome:
    """A privacy request as done, with the personas it touched (ids, for the audit log)."""

    request: PrivacyRequest
    persona_ids: list[uuid.UUID]


class ConfirmResult(StrEnum):
    ERASED = "ERASED"
    # One answer for a wrong, expired, used-up or unknown code: the page says the same for each.
    REFUSED = "REFUSED"


@dataclass(frozen=True)
class Confirmation:
    result: ConfirmResult
    request: PrivacyRequest | None
    persona_ids: list[uuid.UUID]
    # Why it was refused, for the audit log (no PII).
    detail: str = ""


def normalize_contact(phone: str | None, email: str | None, region: str, path: list[str]) -> ContactKeys:
    """The normalized contact; INVALID_PHONE/INVALID_EMAIL, or NO_CONTACT_INFO when neither is usable."""
    keys, errors = contact_keys(phone or None, email or None, region, path)
    if errors:
        raise UserErrors(errors)
    if not keys.pairs():
        raise UserError("NO_CONTACT_INFO", "Give a valid phone number or email.", path)
    return keys


def contact_hashes(keys: ContactKeys) -> str:
    """The request's record of who asked: sorted keyed hashes, never the values."""
    return " ".join(sorted(contact_hash(value) for _, value in keys.pairs()))


async def request_privacy_action(
    session: AsyncSession, org: Organization, keys: ContactKeys, action: PrivacyAction, *, requested_by: str
) -> Outcome:
    """A staff request: either action runs at once and the request is COMPLETED."""
    request = _new_request(org.id, keys, action, requested_by)
    if action is PrivacyAction.OPT_OUT:
        ids = await opt_out(session, org.id, keys)
    else:
        ids = [p.id for p in await personas_for_keys(session, org.id, keys)]
        await erase_personas(session, org.id, ids)
    _complete(request, len(ids))
    session.add(request)
    await session.flush()
    return Outcome(request, ids)


async def opt_out(session: AsyncSession, org_id: uuid.UUID, keys: ContactKeys) -> list[uuid.UUID]:
    """Every channel OPTED_OUT by PRIVACY_REQUEST for each persona holding the contact; suppress the contacts."""
    personas = await personas_for_keys(session, org_id, keys)
    values = {value for _, value in keys.pairs()}
    for persona in personas:
        for channel in Channel:
            await record_consent(
                session,
                org_id,
                persona,
                channel=channel.value,
                status=OptInStatus.OPTED_OUT,
                source=ConsentSource.PRIVACY_REQUEST,
            )
    if personas:
        held = await session.execute(
            select(col(IdentityKey.value)).where(
                col(IdentityKey.org_id) == org_id, col(IdentityKey.persona_id).in_([p.id for p in personas])
            )
        )
        values.update(held.scalars())
    await session.flush()
    # Two opt-outs of one contact may race: the second finds the entry there and leaves it.
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    now = utcnow()
    entries = [{"org_id": org_id, "contact_hash": contact_hash(v), "created_at": now} for v in sorted(values)]
    await session.execute(insert(SUPPRESSIONS).values(entries).on_conflict_do_nothing())
    return [p.id for p in personas]


# The public page ----------------------------------------------------------------


async def public_opt_out(session: AsyncSession, org: Organization, keys: ContactKeys) -> Outcome:
    request = _new_request(org.id, keys, PrivacyAction.OPT_OUT, PUBLIC_ACTOR)
    ids = await opt_out(session, org.id, keys)
    _complete(request, len(ids))
    session.add(request)
    await session.flush()
    return Outcome(request, ids)


async def start_deletion(session: AsyncSession, org: Organization, keys: ContactKeys) -> tuple[PrivacyRequest, str]:
    """A pending deletion and its one-time code (the caller sends it); older open codes for the contact die."""
    request = _new_request(org.id, keys, PrivacyAction.DELETE_DATA, PUBLIC_ACTOR)
    await session.execute(
        update(PrivacyRequest)
        .where(*_open_deletions(org.id, request.contact_hashes))
        .values(code_hash=None, code_expires_at=None)
    )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    request.code_hash = _code_digest(request.id, code)
    request.code_expires_at = request.requested_at + CODE_TTL
    session.add(request)
    await session.flush()
    return request, code


async def confirm_deletion(session: AsyncSession, org: Organization, keys: ContactKeys, code: str) -> Confirmation:
    """Erase when the code matches the newest open deletion for exactly this contact."""
    hashes = contact_hashes(keys)
    request = (
        await session.execute(
            select(PrivacyRequest)
            .where(*_open_deletions(org.id, hashes))
            .order_by(col(PrivacyRequest.requested_at).desc(), col(PrivacyRequest.id).desc())
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if request is None:
        return Confirmation(ConfirmResult.REFUSED, None, [], "no open code")
    now = utcnow()
    expired = request.code_expires_at is None or request.code_expires_at <= now
    right = not expired and hmac.compare_digest(request.code_hash or "", _code_digest(request.id, code.strip()))
    if not right:
        request.attempts += 1
        if expired or request.attempts >= MAX_CODE_ATTEMPTS:
            request.code_hash, request.code_expires_at = None, None
        await session.flush()
        detail = "expired code" if expired else f"wrong code, attempt {request.attempts}"
        return Confirmation(ConfirmResult.REFUSED, request, [], detail)
    ids = [p.id for p in await personas_for_keys(session, org.id, keys)]
    await erase_personas(session, org.id, ids)
    request.code_hash, request.code_expires_at = None, None
    _complete(request, len(ids))
    await session.flush()
    return Confirmation(ConfirmResult.ERASED, request, ids)


# Listing ----------------------------------------------------------------------------


async def privacy_requests_page(conn: AsyncConnection, org_id: uuid.UUID, request: PageRequest) -> Page[Row[Any]]:
    base = select(REQUESTS).where(REQUESTS.c.org_id == org_id)
    stmt = keyset_select(base, REQUESTS.c.requested_at, REQUESTS.c.id, request)
    rows = (await conn.execute(stmt)).all()
    return build_page(rows, request, lambda r: Cursor(r.requested_at, r.id))


async def privacy_requests_count(conn: AsyncConnection, org_id: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(REQUESTS).where(REQUESTS.c.org_id == org_id)
    return int((await conn.execute(stmt)).scalar_one())


# Helpers ------------------------------------------------------------------------------


def _new_request(org_id: uuid.UUID, keys: ContactKeys, action: PrivacyAction, requested_by: str) -> PrivacyRequest:
    return PrivacyRequest(
        org_id=org_id,
        action=action.value,
        status=PrivacyRequestStatus.PENDING_VERIFICATION.value,
        contact_hashes=contact_hashes(keys),
        requested_by=requested_by[:200],
        requested_at=utcnow(),
    )


def _complete(request: PrivacyRequest, affected: int) -> None:
    request.status = PrivacyRequestStatus.COMPLETED.value
    request.personas_affected = affected
    request.completed_at = utcnow()


def _open_deletions(org_id: uuid.UUID, hashes: str) -> list[Any]:
    return [
        col(PrivacyRequest.org_id) == org_id,
        col(PrivacyRequest.action) == PrivacyAction.DELETE_DATA.value,
        col(PrivacyRequest.status) == PrivacyRequestStatus.PENDING_VERIFICATION.value,
        col(PrivacyRequest.contact_hashes) == hashes,
        col(PrivacyRequest.code_hash).is_not(None),
    ]


def _code_digest(request_id: uuid.UUID, code: str) -> str:
    message = f"privacy-code:{request_id.hex}:{code}".encode()
    return hmac.new(get_settings().secret.encode(), message, hashlib.sha256).hexdigest()
