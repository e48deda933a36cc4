"""The customer's own pages and the links to them: the wallet, the referral
link into the sign-up form, the tracking pixel's persona, and sending a
wallet or referral link by text or email.

Every page starts from a signed, expiring persona token (resolvers/links.py).
A token that is forged, expired, of another purpose or organization, or names
an erased persona reads as no persona at all: the pages reveal nothing then.
A merged-away persona's token keeps working for the survivor.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from models import Consent, Message, Organization, Persona, PersonaRollup, PixelEvent
from models.base import new_id, utcnow
from models.enums import MessageChannel, MessageDirection, OptInStatus
from resolvers.consent import is_suppressed
from resolvers.discounts import active_discounts
from resolvers.errors import UserError
from resolvers.events import MAX_MERGE_HOPS
from resolvers.links import read_persona_token, referral_url, wallet_url
from resolvers.notifier import Notification, Notifier
from resolvers.organizations import organization_by_slug
from settings import Settings

# The source of the OUTBOUND messages sendLink records, and of pixel events.
SEND_LINK_SOURCE = "personagraph"
PIXEL_SOURCE = "pixel"


class LinkKind(StrEnum):
    WALLET = "WALLET"
    REFERRAL = "REFERRAL"


class LinkChannel(StrEnum):
    TEXT = "TEXT"
    EMAIL = "EMAIL"


@dataclass(frozen=True)
class TokenHolder:
    org: Organization
    persona: Persona


async def survivor_of(session: AsyncSession, persona: Persona | None) -> Persona | None:
    """The persona itself, or the one it was merged into (following a chain of merges)."""
    for _ in range(MAX_MERGE_HOPS):
        if persona is None or persona.merged_into_id is None:
            return persona
        persona = await session.get(Persona, (persona.org_id, persona.merged_into_id))
    return persona


async def live_persona(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> Persona | None:
    """The persona (or the survivor it was merged into), unless it was erased."""
    persona = await survivor_of(session, await session.get(Persona, (org_id, persona_id)))
    return None if persona is None or persona.erased_at is not None else persona


async def token_holder(
    session: AsyncSession, settings: Settings, token: str, purpose: str, *, org_slug: str | None = None
) -> TokenHolder | None:
    """Whose page a token opens; None for anything but a valid token (of that org, when given)."""
    found = read_persona_token(settings, token, purpose)
    if found is None:
        return None
    org = await session.get(Organization, found.org_id)
    if org is None or (org_slug is not None and org.slug != org_slug):
        return None
    persona = await live_persona(session, org.id, found.persona_id)
    return None if persona is None else TokenHolder(org, persona)


@dataclass(frozen=True)
class WalletOffer:
    name: str
    points_cost: int
    # min(1, points / cost): what the progress bar shows.
    progress: float
    points_needed: int
    can_redeem: bool

    @property
    def percent(self) -> int:
        return int(self.progress * 100)


@dataclass(frozen=True)
class WalletView:
    org_name: str
    first_name: str | None
    points: int
    offers: list[WalletOffer]
    pin: str | None
    referral_url: str
    # What a referred friend's order pays the customer, when the program pays anything.
    referral_points: int | None


async def wallet_view(session: AsyncSession, settings: Settings, token: str) -> WalletView | None:
    """What the wallet page shows, or None: the page then reveals nothing."""
    holder = await token_holder(session, settings, token, "wallet")
    if holder is None:
        return None
    org, persona = holder.org, holder.persona
    rollup = await session.get(PersonaRollup, (org.id, persona.id))
    points = rollup.points_balance if rollup is not None else 0
    offers = [
        WalletOffer(
            name=d.name,
            points_cost=d.points_cost,
            progress=1.0 if d.points_cost <= 0 else min(1.0, points / d.points_cost),
            points_needed=max(0, d.points_cost - points),
            can_redeem=points >= d.points_cost,
        )
        for d in sorted(await active_discounts(session, org.id), key=lambda d: (d.points_cost, d.name))
    ]
    return WalletView(
        org_name=org.name,
        first_name=persona.first_name,
        points=points,
        offers=offers,
        pin=persona.wallet_pin if org.show_pin_in_wallets else None,
        referral_url=referral_url(settings, org.id, persona.id),
        referral_points=org.referral_points if org.referral_points_enabled and org.referral_points > 0 else None,
    )


async def referral_signup_path(session: AsyncSession, settings: Settings, token: str) -> str | None:
    """Where a referral link leads: the sign-up form, carrying the token as `ref`."""
    holder = await token_holder(session, settings, token, "referral")
    if holder is None:
        return None
    return f"/signup/{quote(holder.org.slug)}?ref={quote(token)}"


async def referrer_for(
    session: AsyncSession, settings: Settings, org_id: uuid.UUID, ref: str | None
) -> uuid.UUID | None:
    """The sign-up form's `ref`: the live referrer's id when it is a valid referral token of this org."""
    if not ref:
        return None
    found = read_persona_token(settings, ref, "referral")
    if found is None or found.org_id != org_id:
        return None
    persona = await live_persona(session, org_id, found.persona_id)
    return persona.id if persona is not None else None


async def pixel_holder(session: AsyncSession, settings: Settings, org_slug: str, token: str) -> TokenHolder | None:
    """The persona a pixel token names, only when it is a valid token of this org."""
    if await organization_by_slug(session, org_slug) is None:
        return None
    return await token_holder(session, settings, token, "pixel", org_slug=org_slug)


@dataclass(frozen=True)
class SentLink:
    persona: Persona
    message: Message


def _compose(org: Organization, persona: Persona, link: LinkKind, url: str) -> tuple[str, str]:
    """(subject, body) of the message."""
    hello = f"Hi {persona.first_name}" if persona.first_name else "Hi"
    if link is LinkKind.WALLET:
        subject = f"Your {org.name} rewards wallet"
        body = f"{hello}, here is your {org.name} rewards wallet: your points and discounts. {url}"
    else:
        subject = f"Invite your friends to {org.name}"
        body = f"{hello}, invite your friends to {org.name} with your own link: {url}"
    return subject, body


async def send_link(
    session: AsyncSession,
    settings: Settings,
    notifier: Notifier,
    *,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    link: LinkKind,
    channel: LinkChannel,
) -> SentLink:
    """Send the wallet or referral link and record it as an OUTBOUND message.

    Nothing is sent to a persona without that contact (NO_CONTACT_INFO) or
    opted out of that channel (OPTED_OUT)."""
    persona = await session.get(Persona, (org_id, persona_id))
    if persona is None:
        raise UserError("NOT_FOUND", "No persona with that id.", ["input", "personaId"])
    if persona.merged_into_id is not None:
        raise UserError(
            "ALREADY_MERGED", "This persona was merged away: send the link to the survivor.", ["input", "personaId"]
        )
    to = persona.phone if channel is LinkChannel.TEXT else persona.email
    if not to:
        what = "mobile phone" if channel is LinkChannel.TEXT else "email"
        raise UserError("NO_CONTACT_INFO", f"This persona has no {what} on file.", ["input", "channel"])
    consent = await session.get(Consent, (org_id, persona.id, channel.value))
    opted_out = consent is not None and consent.status == OptInStatus.OPTED_OUT.value
    if opted_out or await is_suppressed(session, org_id, persona):
        raise UserError(
            "OPTED_OUT", f"This persona opted out of {channel.value}: nothing was sent.", ["input", "channel"]
        )
    org = await session.get(Organization, org_id)
    assert org is not None, "the viewer's organization exists"
    url = (wallet_url if link is LinkKind.WALLET else referral_url)(settings, org_id, persona.id)
    subject, body = _compose(org, persona, link, url)
    if channel is LinkChannel.TEXT:
        body += " Reply STOP to opt out."
    message = Message(
        org_id=org_id,
        persona_id=persona.id,
        source=SEND_LINK_SOURCE,
        external_id=f"send-link-{new_id()}",
        direction=MessageDirection.OUTBOUND.value,
        channel=(MessageChannel.SMS if channel is LinkChannel.TEXT else MessageChannel.EMAIL).value,
        body=body,
        campaign=f"{link.value.lower()}-link",
        sent_at=utcnow(),
    )
    session.add(message)
    await session.flush()
    # Last, inside the transaction: a provider failure leaves no message in the history.
    await notifier.send(
        Notification(channel=channel.value, to=to, body=body, subject=subject if channel is LinkChannel.EMAIL else None)
    )
    return SentLink(persona=persona, message=message)


async def record_pixel_event(
    session: AsyncSession,
    org_id: uuid.UUID,
    persona: Persona,
    *,
    site: str,
    event: str,
    url: str | None,
    occurred_at: dt.datetime,
) -> PixelEvent:
    """A page view or named event the tracking pixel reported for a persona."""
    row = PixelEvent(
        org_id=org_id,
        persona_id=persona.id,
        source=PIXEL_SOURCE,
        site=site,
        event=event,
        url=url,
        occurred_at=occurred_at,
    )
    session.add(row)
    await session.flush()
    return row
