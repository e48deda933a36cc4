"""Consent per channel: a current status and an event for every change.

Push consents come only from the customer's device; an opt-out made by a
privacy request can only be reversed by the customer's own consent.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Consent, ConsentEvent, Persona, Suppression
from models.base import utcnow
from models.enums import Channel, ConsentSource, OptInStatus
from resolvers.errors import UserError
from settings import get_settings

PUSH_CHANNELS = frozenset({Channel.MOBILE_PUSH.value, Channel.BROWSER_PUSH.value})
CUSTOMER_SOURCES = frozenset({ConsentSource.CUSTOMER.value, ConsentSource.DEVICE.value})


class ConsentLike(Protocol):
    channel: str
    status: str
    source: str


def validate_consents(consents: Sequence[ConsentLike], path: list[str]) -> list[UserError]:
    errors = []
    for i, c in enumerate(consents):
        if c.channel in PUSH_CHANNELS and c.status == OptInStatus.OPTED_IN.value and c.source != ConsentSource.DEVICE:
            errors.append(
                UserError(
                    "CONSENT_REQUIRES_DEVICE",
                    f"{c.channel} opt-in comes only from the customer's device (source DEVICE).",
                    [*path, "consents", str(i), "status"],
                )
            )
    return errors


def contact_hash(value: str) -> str:
    """A keyed hash of a normalized phone or email: the suppression list never holds the value."""
    return hmac.new(get_settings().secret.encode(), value.encode(), hashlib.sha256).hexdigest()


async def is_suppressed(session: AsyncSession, org_id: uuid.UUID, persona: Persona) -> bool:
    hashes = [contact_hash(v) for v in (persona.phone, persona.email) if v]
    if not hashes:
        return False
    found = await session.execute(
        select(col(Suppression.contact_hash)).where(
            col(Suppression.org_id) == org_id, col(Suppression.contact_hash).in_(hashes)
        )
    )
    return found.first() is not None


async def record_consent(
    session: AsyncSession,
    org_id: uuid.UUID,
    persona: Persona,
    *,
    channel: str,
    status: OptInStatus,
    source: ConsentSource,
) -> bool:
    """Apply one consent; False when the rules keep the current status."""
    current = await session.get(Consent, (org_id, persona.id, channel))
    if status is OptInStatus.OPTED_IN and source.value not in CUSTOMER_SOURCES:
        privacy_opt_out = (
            current is not None
            and current.status == OptInStatus.OPTED_OUT.value
            and current.source == ConsentSource.PRIVACY_REQUEST.value
        )
        if privacy_opt_out or await is_suppressed(session, org_id, persona):
            return False
    if current is not None and current.status == status.value and current.source == source.value:
        return False
    now = utcnow()
    if current is None:
        session.add(
            Consent(org_id=org_id, persona_id=persona.id, channel=channel, status=status, source=source, updated_at=now)
        )
    else:
        current.status, current.source, current.updated_at = status.value, source.value, now
    session.add(
        ConsentEvent(
            org_id=org_id, persona_id=persona.id, channel=channel, status=status, source=source, occurred_at=now
        )
    )
    if channel == Channel.TEXT.value and status is OptInStatus.OPTED_OUT:
        persona.sms_opt_out_at = now
    await session.flush()
    return True
