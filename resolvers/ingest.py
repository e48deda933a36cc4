"""Contacts arriving from points of sale, CSV files and sign-up forms:
identity resolution (one persona per customer) and automatic merges.

A contact is validated in full before anything is written. Its phone and
email are looked up in one statement; no owner means a new persona, one owner
an update, two owners an automatic merge (the older survives). Each row runs
in its own savepoint, so one bad row never fails or half-writes the others,
and a unique-key race with a concurrent ingest of the same customer is
retried: the second time, the other transaction's persona is found.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import (
    Consent,
    ConsentEvent,
    CustomAttribute,
    IdentityKey,
    LegacyPointImport,
    Organization,
    Persona,
    PersonaRollup,
    PersonaTag,
    Store,
)
from models.base import utcnow
from models.enums import AttributeSource, Channel, ConsentSource, MergeKind, OptInStatus, PointsEntryKind, SourceKind
from resolvers import consent, merges, tags_attributes
from resolvers.errors import UserError, UserErrors
from resolvers.identity import ContactKeys, contact_keys
from resolvers.numbers import next_persona_number
from resolvers.points import post_entry

PERSONAS = Persona.__table__  # type: ignore[attr-defined]
RAW_FILE = "RAW_FILE"
LOYALTY = "LOYALTY"
MAX_BATCH = 1000
# Attempts at a row whose identity key another transaction claimed meanwhile.
ATTEMPTS = 3
# Column widths (models/) that input text must fit.
NAME_LENGTH = SOURCE_LENGTH = KEY_LENGTH = TAG_LENGTH = 200


class ConcurrentChange(Exception):
    """Another transaction changed what this row matched while it ran: the row is tried again."""


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
    # Problems the caller found while reading the row (e.g. a malformed id): the row is REJECTED with them.
    input_errors: list[UserError] = field(default_factory=list)


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


def check_source(source: str, path: list[str]) -> None:
    if not source.strip() or len(source) > SOURCE_LENGTH:
        raise UserError("INVALID", f"source must be 1 to {SOURCE_LENGTH} characters.", path)


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
    return [
        await ingest_one(session, org, source, contact, actor=actor, path=[*path, str(i)], number_block=number_block)
        for i, contact in enumerate(contacts)
    ]


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
    """Resolve one contact in its own savepoint: all of it is written, or none of it."""
    try:
        keys = validate_contact(org, contact, path)
    except (UserError, UserErrors) as e:
        return ContactResult(IngestOutcome.REJECTED, None, errors_of(e))
    for attempt in range(ATTEMPTS):
        savepoint = await session.begin_nested()
        try:
            persona, outcome = await resolve_contact(
                session, org, source, contact, keys, actor=actor, path=path, number_block=number_block
            )
        except (UserError, UserErrors) as e:
            await savepoint.rollback()
            return ContactResult(IngestOutcome.REJECTED, None, errors_of(e))
        except (IntegrityError, ConcurrentChange):
            # A concurrent ingest claimed one of the keys, or merged one of the owners, first:
            # the next attempt finds how things stand now.
            await savepoint.rollback()
            if attempt == ATTEMPTS - 1:
                raise
            continue
        await savepoint.commit()
        return ContactResult(outcome, persona)
    raise AssertionError("unreachable")


def errors_of(exc: UserError | UserErrors) -> list[UserError]:
    return exc.errors if isinstance(exc, UserErrors) else [exc]


def validate_contact(org: Organization, contact: ContactData, path: list[str]) -> ContactKeys:
    """The contact's identity keys; every problem of the row at once (UserErrors), before any write."""
    keys, errors = contact_keys(contact.phone, contact.email, org.default_region, path)
    errors = [*contact.input_errors, *errors, *consent.validate_consents(contact.consents, path)]
    errors += _field_errors(contact, path)
    if errors:
        raise UserErrors(errors)
    if not keys.pairs():
        raise UserError("NO_CONTACT_INFO", "A contact needs a valid phone or email (placeholders do not count).", path)
    return keys


def _field_errors(contact: ContactData, path: list[str]) -> list[UserError]:
    errors = []

    def invalid(message: str, *where: str) -> None:
        errors.append(UserError("INVALID", message, [*path, *where]))

    for name, graph_name in (("first_name", "firstName"), ("last_name", "lastName"), ("source_id", "sourceId")):
        value = getattr(contact, name)
        if value is not None and len(value.strip()) > NAME_LENGTH:
            invalid(f"{graph_name} is longer than {NAME_LENGTH} characters.", graph_name)
    for i, (key, _) in enumerate(contact.attributes):
        if not key.strip() or len(key.strip()) > KEY_LENGTH:
            invalid(f"An attribute key must be 1 to {KEY_LENGTH} characters.", "attributes", str(i), "key")
    for i, tag in enumerate(contact.tags):
        if len(tag.strip()) > TAG_LENGTH:
            invalid(f"A tag is at most {TAG_LENGTH} characters.", "tags", str(i))
    if contact.legacy_points is not None:
        if contact.legacy_points < 0:
            invalid("legacyPoints may not be negative.", "legacyPoints")
        elif contact.legacy_points > 0 and not (contact.source_id or "").strip():
            invalid("legacyPoints need a sourceId: they are imported once per (source, sourceId).", "legacyPoints")
    if contact.loyalty_signup_at is not None and contact.loyalty_signup_at.tzinfo is None:
        invalid("loyaltySignupAt needs a time zone.", "loyaltySignupAt")
    if contact.birthday is not None and contact.birthday > dt.date.today():  # noqa: DTZ011 (a calendar date)
        invalid("birthday is in the future.", "birthday")
    return errors


async def resolve_contact(
    session: AsyncSession,
    org: Organization,
    source: str,
    contact: ContactData,
    keys: ContactKeys,
    *,
    actor: str,
    path: list[str],
    number_block: int,
) -> tuple[Persona, IngestOutcome]:
    """Find, make or merge the contact's persona and write the contact onto it.

    No savepoint of its own: the caller's savepoint makes the row atomic."""
    await session.flush()  # the owners are read afresh below: nothing of the caller's may be pending
    if contact.favorite_store_id is not None and await session.get(Store, (org.id, contact.favorite_store_id)) is None:
        raise UserError("NOT_FOUND", "No store with that id.", [*path, "favoriteStoreId"])
    owners, held = await _owners(session, org.id, keys)
    if not owners:
        persona = await _create_persona(session, org, source, contact, keys, number_block)
        await _write_new_contact(session, org, persona, source, contact, actor=actor)
        return persona, IngestOutcome.CREATED
    outcome = IngestOutcome.UPDATED
    persona = owners[0]
    if len(owners) > 1:
        survivor, merged = sorted(owners, key=lambda p: (p.created_at, p.number))
        matched = [f"{kind} {value}" for (kind, value), owner in held.items() if owner == merged.id]
        try:
            await merges.merge_personas(
                session,
                org_id=org.id,
                survivor=survivor,
                merged=merged,
                kind=MergeKind.AUTOMATIC,
                reason="matched " + " and ".join(matched),
                actor=actor,
            )
        except UserError as e:
            if e.code == "ALREADY_MERGED":  # a concurrent ingest merged them first
                raise ConcurrentChange from e
            raise
        persona, outcome = survivor, IngestOutcome.MERGED
    for kind, value in keys.pairs():
        if (kind, value) not in held:
            session.add(IdentityKey(org_id=org.id, kind=kind, value=value, persona_id=persona.id))
    _update_traits(persona, contact, keys)
    await _write_known_contact(session, org, persona, source, contact, actor=actor)
    await session.flush()
    return persona, outcome


async def personas_for_keys(session: AsyncSession, org_id: uuid.UUID, keys: ContactKeys) -> list[Persona]:
    """The distinct personas holding any of the keys, oldest first."""
    owners, _ = await _owners(session, org_id, keys)
    return owners


async def _owners(
    session: AsyncSession, org_id: uuid.UUID, keys: ContactKeys
) -> tuple[list[Persona], dict[tuple[str, str], uuid.UUID]]:
    """One statement: the personas holding the keys (oldest first) and which key each holds."""
    pairs = keys.pairs()
    if not pairs:
        return [], {}
    stmt = (
        select(Persona, col(IdentityKey.kind), col(IdentityKey.value))
        .join(IdentityKey, (col(IdentityKey.org_id) == Persona.org_id) & (col(IdentityKey.persona_id) == Persona.id))
        .where(
            col(IdentityKey.org_id) == org_id,
            or_(*(and_(col(IdentityKey.kind) == k, col(IdentityKey.value) == v) for k, v in pairs)),
        )
        .order_by(col(Persona.created_at), col(Persona.number))
        # Fresh from the database: a concurrent transaction may have archived or merged them.
        .execution_options(populate_existing=True)
    )
    found: dict[uuid.UUID, Persona] = {}
    held: dict[tuple[str, str], uuid.UUID] = {}
    for persona, kind, value in (await session.execute(stmt)).all():
        found.setdefault(persona.id, persona)
        held[(kind, value)] = persona.id
    return list(found.values()), held


async def persona_rows(session: AsyncSession, org_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The personas as rows, as they are now (for payloads: one statement per 500)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[uuid.UUID, Any] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await session.execute(select(PERSONAS).where(PERSONAS.c.org_id == org_id, PERSONAS.c.id.in_(chunk)))
        found.update((r.id, r) for r in rows)
    return found


def _clean(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


async def _create_persona(
    session: AsyncSession, org: Organization, source: str, contact: ContactData, keys: ContactKeys, number_block: int
) -> Persona:
    now = utcnow()
    kind = source_kind(source)
    member = bool(contact.loyalty_member)
    persona = Persona(
        org_id=org.id,
        number=await next_persona_number(session, org.id, number_block),
        first_name=_clean(contact.first_name),
        last_name=_clean(contact.last_name),
        email=keys.email,
        phone=keys.phone,
        birthday=contact.birthday,
        source_kind=kind.value,
        source_name=source if kind is SourceKind.INTEGRATION else None,
        source_id=_clean(contact.source_id),
        favorite_store_id=contact.favorite_store_id,
        browser=_clean(contact.browser),
        ip_address=_clean(contact.ip_address),
        loyalty_member=member,
        loyalty_signup_at=(contact.loyalty_signup_at or now) if member else None,
        referred_by_id=contact.referred_by_id,
        created_at=now,
        updated_at=now,
    )
    session.add(persona)
    # Flushed alone: the unit of work does not order inserts by foreign keys between unrelated models.
    await session.flush()
    session.add(PersonaRollup(org_id=org.id, persona_id=persona.id))
    session.add_all(IdentityKey(org_id=org.id, kind=k, value=v, persona_id=persona.id) for k, v in keys.pairs())
    return persona


def _update_traits(persona: Persona, contact: ContactData, keys: ContactKeys) -> None:
    """Fill and overwrite what the contact says; touch updated_at only when something changed."""
    wanted: dict[str, Any] = {
        "first_name": _clean(contact.first_name),
        "last_name": _clean(contact.last_name),
        "birthday": contact.birthday,
        "favorite_store_id": contact.favorite_store_id,
        "browser": _clean(contact.browser),
        "ip_address": _clean(contact.ip_address),
    }
    if persona.phone is None:
        wanted["phone"] = keys.phone
    if persona.email is None:
        wanted["email"] = keys.email
    if persona.referred_by_id is None and contact.referred_by_id != persona.id:
        wanted["referred_by_id"] = contact.referred_by_id
    changed = False
    for name, value in wanted.items():
        if value is not None and getattr(persona, name) != value:
            setattr(persona, name, value)
            changed = True
    if contact.loyalty_member and not persona.loyalty_member:
        persona.loyalty_member = True
        persona.loyalty_signup_at = contact.loyalty_signup_at or utcnow()
        changed = True
    if changed:
        persona.updated_at = utcnow()


def _attribute_source(source: str) -> AttributeSource:
    return {
        SourceKind.RAW_FILE: AttributeSource.BULK_IMPORT,
        SourceKind.LOYALTY: AttributeSource.MANUAL,
        SourceKind.INTEGRATION: AttributeSource.POS_GROUP,
    }[source_kind(source)]


def _wanted_attributes(contact: ContactData) -> dict[str, str]:
    return {key.strip(): value for key, value in contact.attributes}


def _wanted_tags(contact: ContactData) -> set[str]:
    return {tag.strip() for tag in contact.tags if tag.strip()}


async def _write_new_contact(
    session: AsyncSession, org: Organization, persona: Persona, source: str, contact: ContactData, *, actor: str
) -> None:
    """A new persona holds nothing yet: its attributes and tags go in without looking first."""
    attribute_source = _attribute_source(source)
    session.add_all(
        CustomAttribute(org_id=org.id, persona_id=persona.id, key=key, value=value, source=attribute_source)
        for key, value in _wanted_attributes(contact).items()
    )
    session.add_all(PersonaTag(org_id=org.id, persona_id=persona.id, tag=tag) for tag in sorted(_wanted_tags(contact)))
    await session.flush()
    await _write_consents(session, org, persona, contact, {})
    await _import_legacy_points(session, org.id, persona, source, contact, actor)


async def _write_known_contact(
    session: AsyncSession, org: Organization, persona: Persona, source: str, contact: ContactData, *, actor: str
) -> None:
    attributes = _wanted_attributes(contact)
    if attributes:
        # Loaded in one statement and held (the session's identity map is weak), so
        # set_attributes finds each in the session; keys nobody has yet are added.
        held = (
            await session.execute(
                select(CustomAttribute).where(
                    col(CustomAttribute.org_id) == org.id,
                    col(CustomAttribute.persona_id) == persona.id,
                    col(CustomAttribute.key).in_(list(attributes)),
                )
            )
        ).scalars()
        present = {a.key: a for a in held}
        source_now = _attribute_source(source)
        session.add_all(
            CustomAttribute(org_id=org.id, persona_id=persona.id, key=key, value=value, source=source_now)
            for key, value in attributes.items()
            if key not in present
        )
        await tags_attributes.set_attributes(
            session, org.id, persona.id, [(k, v) for k, v in attributes.items() if k in present], source_now
        )
    if _wanted_tags(contact):
        await tags_attributes.add_tags(session, org.id, persona.id, _wanted_tags(contact))
    current: dict[str, Consent] = {}
    if contact.consents:
        rows = await session.execute(
            select(Consent).where(col(Consent.org_id) == org.id, col(Consent.persona_id) == persona.id)
        )
        current = {c.channel: c for c in rows.scalars()}
    await _write_consents(session, org, persona, contact, current)
    await _import_legacy_points(session, org.id, persona, source, contact, actor)


async def _write_consents(
    session: AsyncSession, org: Organization, persona: Persona, contact: ContactData, current: dict[str, Consent]
) -> None:
    """The contact's consents under record_consent's rules (resolvers/consent.py), batched: the
    suppression list is read at most once and every change is flushed together.

    `current` holds the persona's consents (empty for a new persona). Unchanged channels are
    skipped; an opt-in from anyone but the customer never undoes a privacy opt-out and never
    reaches a suppressed contact; every change leaves an event."""
    suppressed: bool | None = None
    now = utcnow()
    for item in contact.consents:
        held = current.get(item.channel)
        if held is not None and held.status == item.status and held.source == item.source:
            continue
        status, source = OptInStatus(item.status), ConsentSource(item.source)
        if status is OptInStatus.OPTED_IN and source.value not in consent.CUSTOMER_SOURCES:
            if held is not None and (held.status, held.source) == (
                OptInStatus.OPTED_OUT,
                ConsentSource.PRIVACY_REQUEST,
            ):
                continue
            if suppressed is None:
                suppressed = await consent.is_suppressed(session, org.id, persona)
            if suppressed:
                continue
        if held is None:
            held = Consent(org_id=org.id, persona_id=persona.id, channel=item.channel, status=status, source=source)
            session.add(held)
            current[item.channel] = held
        held.status, held.source, held.updated_at = status.value, source.value, now
        session.add(
            ConsentEvent(
                org_id=org.id,
                persona_id=persona.id,
                channel=item.channel,
                status=status,
                source=source,
                occurred_at=now,
            )
        )
        if item.channel == Channel.TEXT.value and status is OptInStatus.OPTED_OUT:
            persona.sms_opt_out_at = now
    await session.flush()


async def _import_legacy_points(
    session: AsyncSession, org_id: uuid.UUID, persona: Persona, source: str, contact: ContactData, actor: str
) -> None:
    source_id = _clean(contact.source_id)
    if not contact.legacy_points or source_id is None:
        return
    if await session.get(LegacyPointImport, (org_id, source, source_id)) is not None:
        return
    await session.flush()
    entry = await post_entry(
        session,
        org_id=org_id,
        persona_id=persona.id,
        kind=PointsEntryKind.LEGACY_IMPORT,
        delta=contact.legacy_points,
        note=f"legacy points from {source}",
        actor=actor,
    )
    session.add(LegacyPointImport(org_id=org_id, source=source, source_id=source_id, entry_id=entry.id))
    await session.flush()
