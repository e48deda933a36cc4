"""Contacts and orders arriving from points of sale, CSV files and sign-up
forms: identity resolution (one persona per customer), automatic merges,
accrual and rollups. Each row runs in its own savepoint, so one bad row
never fails or half-writes the others."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import (
    IdentityKey,
    LegacyPointImport,
    Organization,
    Persona,
    PersonaRollup,
)
from models.base import utcnow
from models.enums import AttributeSource, ConsentSource, MergeKind, OptInStatus, PointsEntryKind, SourceKind
from resolvers import consent, merges, tags_attributes
from resolvers.errors import UserError, UserErrors
from resolvers.identity import ContactKeys, contact_keys
from resolvers.numbers import next_persona_number
from resolvers.points import post_entry

RAW_FILE = "RAW_FILE"
LOYALTY = "LOYALTY"
MAX_BATCH = 1000


class IngestOutcome(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    MERGED = "MERGED"
    REJECTED = "REJECTED"


@dataclass
class ConsentData:
    channel: str
    status: str
    source: str


@dataclass
class ContactData:
    source_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    birthday: dt.date | None = None
    favorite_store_id: uuid.UUID | None = None
    loyalty_member: bool | None = None
    loyalty_signup_at: dt.datetime | None = None
    attributes: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    consents: list[ConsentData] = field(default_factory=list)
    legacy_points: int | None = None
    # Set by the sign-up form and the pixel, never by integrations.
    browser: str | None = None
    ip_address: str | None = None
    referred_by_id: uuid.UUID | None = None


@dataclass
class ContactResult:
    outcome: IngestOutcome
    persona: Persona | None
    errors: list[UserError] = field(default_factory=list)


def source_kind(source: str) -> SourceKind:
    if source.upper() == RAW_FILE:
        return SourceKind.RAW_FILE
    if source.upper() == LOYALTY:
        return SourceKind.LOYALTY
    return SourceKind.INTEGRATION


def check_batch_size(count: int, path: list[str]) -> None:
    if count > MAX_BATCH:
        raise UserError("TOO_MANY", f"At most {MAX_BATCH} rows per call; {count} were sent.", path)


async def ingest_contacts(
    session: AsyncSession,
    org: Organization,
    source: str,
    contacts: Sequence[ContactData],
    *,
    actor: str,
    path: list[str],
    number_block: int = 50,
) -> list[ContactResult]:
    """One result per contact, in order; the caller owns the transaction."""
    results = []
    for index, contact in enumerate(contacts):
        results.append(
            await ingest_one(
                session, org, source, contact, actor=actor, path=[*path, str(index)], number_block=number_block
            )
        )
    return results


async def ingest_one(
    session: AsyncSession,
    org: Organization,
    source: str,
    contact: ContactData,
    *,
    actor: str,
    path: list[str],
    number_block: int = 50,
) -> ContactResult:
    """Resolve one contact in a savepoint; a unique-key race is retried once."""
    for attempt in range(3):
        savepoint = await session.begin_nested()
        try:
            persona, outcome = await _resolve_contact(
                session, org, source, contact, actor=actor, path=path, number_block=number_block
            )
        except UserErrors as e:
            await savepoint.rollback()
            return ContactResult(IngestOutcome.REJECTED, None, e.errors)
        except UserError as e:
            await savepoint.rollback()
            return ContactResult(IngestOutcome.REJECTED, None, [e])
        except IntegrityError:
            # Another transaction claimed the same identity key first: retry,
            # and this time find its persona.
            await savepoint.rollback()
            if attempt == 2:
                raise
            continue
        await savepoint.commit()
        return ContactResult(outcome, persona)
    raise AssertionError("unreachable")


async def _resolve_contact(
    session: AsyncSession,
    org: Organization,
    source: str,
    contact: ContactData,
    *,
    actor: str,
    path: list[str],
    number_block: int,
) -> tuple[Persona, IngestOutcome]:
    keys, errors = contact_keys(contact.phone, contact.email, org.default_region, path)
    errors += consent.validate_consents(contact.consents, path)
    if contact.legacy_points is not None and contact.legacy_points < 0:
        errors.append(UserError("INVALID", "legacyPoints may not be negative.", [*path, "legacyPoints"]))
    if errors:
        raise UserErrors(errors)
    if not keys.pairs():
        raise UserError("NO_CONTACT_INFO", "A contact needs a valid phone or email.", path)

    owners = await personas_for_keys(session, org.id, keys)
    outcome = IngestOutcome.UPDATED
    if not owners:
        persona = await _create_persona(session, org, source, contact, number_block)
        outcome = IngestOutcome.CREATED
    elif len(owners) == 1:
        persona = owners[0]
    else:
        survivor, merged = sorted(owners, key=lambda p: (p.created_at, p.number))
        reason = _merge_reason(keys, merged, await _keys_of(session, org.id, merged.id))
        await merges.merge_personas(
            session,
            org_id=org.id,
            survivor=survivor,
            merged=merged,
            kind=MergeKind.AUTOMATIC,
            reason=reason,
            actor=actor,
        )
        persona = survivor
        outcome = IngestOutcome.MERGED

    await _claim_keys(session, org.id, persona, keys)
    await _apply_contact(session, org, persona, source, contact, actor=actor, path=path)
    await session.flush()
    return persona, outcome


async def personas_for_keys(session: AsyncSession, org_id: uuid.UUID, keys: ContactKeys) -> list[Persona]:
    """The distinct personas holding any of the keys, oldest first."""
    pairs = keys.pairs()
    if not pairs:
        return []
    conditions = [(col(IdentityKey.kind) == k) & (col(IdentityKey.value) == v) for k, v in pairs]
    condition = conditions[0] if len(conditions) == 1 else conditions[0] | conditions[1]
    stmt = (
        select(Persona)
        .join(IdentityKey, (col(IdentityKey.org_id) == Persona.org_id) & (col(IdentityKey.persona_id) == Persona.id))
        .where(col(IdentityKey.org_id) == org_id, condition)
        .order_by(col(Persona.created_at))
    )
    found: dict[uuid.UUID, Persona] = {}
    for persona in (await session.execute(stmt)).scalars():
        found.setdefault(persona.id, persona)
    return list(found.values())


async def _keys_of(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> set[tuple[str, str]]:
    rows = await session.execute(
        select(col(IdentityKey.kind), col(IdentityKey.value)).where(
            col(IdentityKey.org_id) == org_id, col(IdentityKey.persona_id) == persona_id
        )
    )
    return {(k, v) for k, v in rows.all()}


def _merge_reason(keys: ContactKeys, merged: Persona, merged_keys: set[tuple[str, str]]) -> str:
    matched = [f"{kind} {value}" for kind, value in keys.pairs() if (kind, value) in merged_keys]
    return "matched " + " and ".join(matched) if matched else "matched the same contact"


async def _create_persona(
    session: AsyncSession, org: Organization, source: str, contact: ContactData, number_block: int
) -> Persona:
    now = utcnow()
    kind = source_kind(source)
    persona = Persona(
        org_id=org.id,
        number=await next_persona_number(session, org.id, number_block),
        source_kind=kind.value,
        source_name=source if kind is SourceKind.INTEGRATION else None,
        source_id=contact.source_id,
        created_at=now,
        updated_at=now,
    )
    session.add(persona)
    await session.flush()
    session.add(PersonaRollup(org_id=org.id, persona_id=persona.id))
    await session.flush()
    return persona


async def _claim_keys(session: AsyncSession, org_id: uuid.UUID, persona: Persona, keys: ContactKeys) -> None:
    """Give the persona the keys nobody holds yet; fill its phone and email."""
    held = await _keys_of(session, org_id, persona.id)
    for kind, value in keys.pairs():
        if (kind, value) not in held:
            session.add(IdentityKey(org_id=org_id, kind=kind, value=value, persona_id=persona.id))
    if keys.phone and not persona.phone:
        persona.phone = keys.phone
    if keys.email and not persona.email:
        persona.email = keys.email
    await session.flush()


async def _apply_contact(
    session: AsyncSession,
    org: Organization,
    persona: Persona,
    source: str,
    contact: ContactData,
    *,
    actor: str,
    path: list[str],
) -> None:
    for name in ("first_name", "last_name", "birthday", "favorite_store_id", "browser", "ip_address"):
        value = getattr(contact, name)
        if value is not None and value != "":
            setattr(persona, name, value.strip() if isinstance(value, str) else value)
    if contact.referred_by_id is not None and persona.referred_by_id is None and contact.referred_by_id != persona.id:
        persona.referred_by_id = contact.referred_by_id
    if contact.loyalty_member and not persona.loyalty_member:
        persona.loyalty_member = True
        persona.loyalty_signup_at = contact.loyalty_signup_at or utcnow()
    persona.updated_at = utcnow()
    kind = source_kind(source)
    attribute_source = AttributeSource.BULK_IMPORT if kind is SourceKind.RAW_FILE else AttributeSource.POS_GROUP
    if kind is SourceKind.LOYALTY:
        attribute_source = AttributeSource.MANUAL
    if contact.attributes:
        await tags_attributes.set_attributes(session, org.id, persona.id, contact.attributes, attribute_source)
    if contact.tags:
        await tags_attributes.add_tags(session, org.id, persona.id, contact.tags)
    for item in contact.consents:
        await consent.record_consent(
            session,
            org.id,
            persona,
            channel=item.channel,
            status=OptInStatus(item.status),
            source=ConsentSource(item.source),
        )
    if contact.legacy_points and contact.source_id:
        await _import_legacy_points(session, org.id, persona, source, contact.source_id, contact.legacy_points, actor)
    await session.flush()


async def _import_legacy_points(
    session: AsyncSession, org_id: uuid.UUID, persona: Persona, source: str, source_id: str, points: int, actor: str
) -> None:
    done = await session.get(LegacyPointImport, (org_id, source, source_id))
    if done is not None:
        return
    entry = await post_entry(
        session,
        org_id=org_id,
        persona_id=persona.id,
        kind=PointsEntryKind.LEGACY_IMPORT,
        delta=points,
        note=f"legacy points from {source}",
        actor=actor,
    )
    session.add(LegacyPointImport(org_id=org_id, source=source, source_id=source_id, entry_id=entry.id))
