"""Contacts arriving from points of sale, CSV files and sign-up forms:
identity resolution (one persona per customer) and automatic merges, row by
row. This is the path of the sign-up form and of single contacts, and the
fallback of the set-wise batch path (resolvers/ingest_batch.py) for merges and
key races; both apply the rules of resolvers/ingest_rules.py.

A contact is validated in full before anything is written. Its phone and
email are looked up in one statement; no owner means a new persona, one owner
an update, two owners an automatic merge (the older survives). Each row runs
in its own savepoint, so one bad row never fails or half-writes the others,
and a unique-key race with a concurrent ingest of the same customer is
retried: the second time, the other transaction's persona is found.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from models.enums import ConsentSource, MergeKind, OptInStatus, PointsEntryKind
from models.tables import PERSONAS
from resolvers import consent, merges, tags_attributes
from resolvers.errors import UserError, UserErrors
from resolvers.identity import ContactKeys
from resolvers.ingest_rules import (
    LOYALTY,
    MAX_BATCH,
    RAW_FILE,
    ConsentData,
    ContactData,
    IngestOutcome,
    attribute_source,
    check_batch_size,
    check_source,
    clean,
    consent_changes,
    errors_of,
    may_need_suppression,
    new_persona_row,
    opts_out_of_text,
    persona_traits,
    source_kind,
    trait_changes,
    validate_contact,
    wanted_attributes,
    wanted_tags,
)
from resolvers.numbers import next_persona_number
from resolvers.points import post_entry

# Attempts at a row whose identity key another transaction claimed meanwhile.
ATTEMPTS = 3


class ConcurrentChange(Exception):
    """Another transaction changed what this row matched while it ran: the row is tried again."""


@dataclass
class ContactResult:
    outcome: IngestOutcome
    persona: Persona | None
    errors: list[UserError] = field(default_factory=list)


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


async def _create_persona(
    session: AsyncSession, org: Organization, source: str, contact: ContactData, keys: ContactKeys, number_block: int
) -> Persona:
    row = new_persona_row(org.id, source, contact, keys, utcnow())
    row["number"] = await next_persona_number(session, org.id, number_block)
    persona = Persona(**row)
    session.add(persona)
    # Flushed alone: the unit of work does not order inserts by foreign keys between unrelated models.
    await session.flush()
    session.add(PersonaRollup(org_id=org.id, persona_id=persona.id))
    session.add_all(IdentityKey(org_id=org.id, kind=k, value=v, persona_id=persona.id) for k, v in keys.pairs())
    return persona


def _update_traits(persona: Persona, contact: ContactData, keys: ContactKeys) -> None:
    for name, value in trait_changes(persona_traits(persona), contact, keys, utcnow()).items():
        setattr(persona, name, value)


async def _write_new_contact(
    session: AsyncSession, org: Organization, persona: Persona, source: str, contact: ContactData, *, actor: str
) -> None:
    """A new persona holds nothing yet: its attributes and tags go in without looking first."""
    source_now = attribute_source(source)
    session.add_all(
        CustomAttribute(org_id=org.id, persona_id=persona.id, key=key, value=value, source=source_now)
        for key, value in wanted_attributes(contact).items()
    )
    session.add_all(PersonaTag(org_id=org.id, persona_id=persona.id, tag=tag) for tag in wanted_tags(contact))
    await session.flush()
    await _write_consents(session, org, persona, contact, {})
    await _import_legacy_points(session, org.id, persona, source, contact, actor)


async def _write_known_contact(
    session: AsyncSession, org: Organization, persona: Persona, source: str, contact: ContactData, *, actor: str
) -> None:
    attributes = wanted_attributes(contact)
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
        source_now = attribute_source(source)
        session.add_all(
            CustomAttribute(org_id=org.id, persona_id=persona.id, key=key, value=value, source=source_now)
            for key, value in attributes.items()
            if key not in present
        )
        await tags_attributes.set_attributes(
            session, org.id, persona.id, [(k, v) for k, v in attributes.items() if k in present], source_now
        )
    if wanted_tags(contact):
        await tags_attributes.add_tags(session, org.id, persona.id, wanted_tags(contact))
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
    """The contact's consents under the rules of ingest_rules.consent_changes; the suppression
    list is read at most once and every change is flushed together.

    `current` holds the persona's consents (empty for a new persona)."""
    if not contact.consents:
        return
    suppressed = may_need_suppression(contact.consents) and await consent.is_suppressed(session, org.id, persona)
    statuses = {channel: (c.status, c.source) for channel, c in current.items()}
    now = utcnow()
    for item in consent_changes(statuses, contact.consents, suppressed):
        status, source = OptInStatus(item.status), ConsentSource(item.source)
        held = current.get(item.channel)
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
        if opts_out_of_text(item):
            persona.sms_opt_out_at = now
    await session.flush()


async def _import_legacy_points(
    session: AsyncSession, org_id: uuid.UUID, persona: Persona, source: str, contact: ContactData, actor: str
) -> None:
    source_id = clean(contact.source_id)
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


# The row types and rules live in resolvers/ingest_rules.py; callers import them from here too.
__all__ = [
    "LOYALTY",
    "MAX_BATCH",
    "RAW_FILE",
    "ConcurrentChange",
    "ConsentData",
    "ContactData",
    "ContactResult",
    "IngestOutcome",
    "check_batch_size",
    "check_source",
    "errors_of",
    "ingest_one",
    "persona_rows",
    "personas_for_keys",
    "resolve_contact",
    "source_kind",
    "validate_contact",
]
