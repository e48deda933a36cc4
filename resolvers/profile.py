"""Staff edits of a persona: archive and restore, traits, custom attributes,
tags and consent.

Each function takes the session of the mutation's one transaction, adds and
flushes, and raises UserError/UserErrors with the input path for a
business-rule failure. Phone and email edits keep the identity keys in step
in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Consent, IdentityKey, Order, Organization, Persona, PointsEntry, Store
from models.base import utcnow
from models.enums import AttributeSource, Channel, ConsentSource, IdentityKind, OptInStatus, PointsEntryKind
from resolvers import audiences, consent, tags_attributes
from resolvers.errors import UserError, UserErrors
from resolvers.identity import normalize_email, normalize_phone
from resolvers.points import EARNED_KINDS, boost_points, order_points, post_entries

MAX_TEXT = 200
# The traits updatePersona may set.
EDITABLE = frozenset({"first_name", "last_name", "email", "phone", "birthday", "favorite_store_id"})


async def get_persona(
    session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID, field: Sequence[str], *, lock: bool = True
) -> Persona:
    """The persona, locked for this transaction; NOT_FOUND for another organization's id too."""
    stmt = select(Persona).where(col(Persona.org_id) == org_id, col(Persona.id) == persona_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    persona = (await session.execute(stmt)).scalar_one_or_none()
    if persona is None:
        raise UserError("NOT_FOUND", "No persona with that id.", field)
    return persona


async def _editable(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> Persona:
    field = ["input", "personaId"]
    persona = await get_persona(session, org_id, persona_id, field)
    if persona.merged_into_id is not None:
        raise UserError("ALREADY_MERGED", "This persona was merged into another: edit that one.", field)
    return persona


# Archive and restore -----------------------------------------------------------


async def archive_persona(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> Persona:
    """Hide the persona from the Personas page; it accrues no points until restored."""
    persona = await _editable(session, org_id, persona_id)
    if persona.archived_at is not None:
        raise UserError("ARCHIVED", "This persona is archived already.", ["input", "personaId"])
    persona.archived_at = persona.updated_at = utcnow()
    await session.flush()
    return persona


@dataclass(frozen=True)
class Restored:
    persona: Persona
    points_credited: int


async def restore_persona(session: AsyncSession, org: Organization, persona_id: uuid.UUID, *, actor: str) -> Restored:
    """Bring the persona back and credit what its orders placed while archived would have earned.

    The audience boost uses the persona's audiences now: which ones it was in
    when each order was placed is not kept.
    """
    persona = await _editable(session, org.id, persona_id)
    if persona.archived_at is None:
        raise UserError("INVALID", "This persona is not archived.", ["input", "personaId"])
    persona.archived_at = None
    persona.updated_at = now = utcnow()
    await session.flush()
    best_multiplier_milli = await audiences.best_multiplier_milli(session, org.id, persona.id)
    credited = 0
    for order in await _uncredited_orders(session, org.id, persona.id):
        base = order_points(order.subtotal_cents, org.points_per_dollar_milli)
        deltas = [
            (kind, points)
            for kind, points in (
                (PointsEntryKind.ORDER, base),
                (PointsEntryKind.VISIT, org.points_per_order),
                (PointsEntryKind.AUDIENCE_BOOST, boost_points(base, best_multiplier_milli)),
            )
            if points > 0
        ]
        if not deltas:
            continue
        await post_entries(
            session,
            org_id=org.id,
            persona_id=persona.id,
            deltas=deltas,
            order_id=order.id,
            note="credited on restore: placed while archived",
            actor=actor,
            at=now,
        )
        credited += sum(points for _, points in deltas)
    return Restored(persona, credited)


async def _uncredited_orders(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> list[Order]:
    """Member orders placed while archived that no accrual entry is tied to yet."""
    credited = exists().where(
        col(PointsEntry.org_id) == org_id,
        col(PointsEntry.order_id) == Order.id,
        col(PointsEntry.kind).in_(EARNED_KINDS),
    )
    rows = await session.execute(
        select(Order)
        .where(
            col(Order.org_id) == org_id,
            col(Order.persona_id) == persona_id,
            col(Order.archived_at_order),
            col(Order.member_at_order),
            ~credited,
        )
        .order_by(col(Order.placed_at), col(Order.id))
    )
    return list(rows.scalars())


# Traits and identity keys -------------------------------------------------------


def _text(value: Any, name: str, errors: list[UserError]) -> str | None:
    clean = (value or "").strip()
    if len(clean) > MAX_TEXT:
        errors.append(UserError("INVALID", f"At most {MAX_TEXT} characters.", ["input", name]))
    return clean or None


def _contact(raw: str | None, kind: IdentityKind, region: str, errors: list[UserError]) -> tuple[bool, str | None]:
    """(valid, normalized value or None to clear it)."""
    name = kind.value
    if raw is None or not raw.strip():
        return True, None
    field = ["input", name]
    try:
        value = (
            normalize_phone(raw, region, field=field)
            if kind is IdentityKind.PHONE
            else normalize_email(raw, field=field)
        )
    except UserError as e:
        errors.append(e)
        return False, None
    if value is None:
        code = "INVALID_PHONE" if kind is IdentityKind.PHONE else "INVALID_EMAIL"
        errors.append(UserError(code, f"This {name} is a placeholder, not a way to reach the customer.", field))
        return False, None
    return True, value


async def _holder(session: AsyncSession, org_id: uuid.UUID, kind: str, value: str) -> Persona | None:
    found = await session.execute(
        select(Persona)
        .join(IdentityKey, (col(IdentityKey.org_id) == Persona.org_id) & (col(IdentityKey.persona_id) == Persona.id))
        .where(col(IdentityKey.org_id) == org_id, col(IdentityKey.kind) == kind, col(IdentityKey.value) == value)
    )
    return found.scalar_one_or_none()


def _duplicate(kind: str, other: Persona) -> UserError:
    return UserError(
        "DUPLICATE",
        f"Persona #{other.number} has this {kind}: merge the two personas instead.",
        ["input", kind],
    )


async def _swap_key(
    session: AsyncSession, org_id: uuid.UUID, persona: Persona, kind: str, old: str | None, new: str | None
) -> None:
    """Drop the key of the value being replaced; claim the new one."""
    if old is not None and old != new:
        await session.execute(
            delete(IdentityKey).where(
                col(IdentityKey.org_id) == org_id,
                col(IdentityKey.kind) == kind,
                col(IdentityKey.value) == old,
                col(IdentityKey.persona_id) == persona.id,
            )
        )
    if new is None or await session.get(IdentityKey, (org_id, kind, new)) is not None:
        return
    savepoint = await session.begin_nested()
    try:
        session.add(IdentityKey(org_id=org_id, kind=kind, value=new, persona_id=persona.id))
        await session.flush()
    except IntegrityError:
        # Claimed by a concurrent transaction since we looked.
        await savepoint.rollback()
        other = await _holder(session, org_id, kind, new)
        raise (
            _duplicate(kind, other)
            if other is not None
            else UserError("DUPLICATE", f"Another persona has this {kind}.", ["input", kind])
        ) from None
    await savepoint.commit()


async def _trait_values(
    session: AsyncSession, org_id: uuid.UUID, changes: Mapping[str, Any], errors: list[UserError]
) -> dict[str, Any]:
    """The names, birthday and favorite store to set, checked."""
    values: dict[str, Any] = {}
    for name, field in (("first_name", "firstName"), ("last_name", "lastName")):
        if name in changes:
            values[name] = _text(changes[name], field, errors)
    if "birthday" in changes:
        birthday: dt.date | None = changes["birthday"]
        if birthday is not None and birthday > utcnow().date():
            errors.append(UserError("INVALID", "A birthday cannot be in the future.", ["input", "birthday"]))
        values["birthday"] = birthday
    if "favorite_store_id" in changes:
        store_id: uuid.UUID | None = changes["favorite_store_id"]
        if store_id is not None and await session.get(Store, (org_id, store_id)) is None:
            errors.append(UserError("NOT_FOUND", "No store with that id.", ["input", "favoriteStoreId"]))
        values["favorite_store_id"] = store_id
    return values


async def _contact_values(
    session: AsyncSession, org: Organization, persona: Persona, changes: Mapping[str, Any], errors: list[UserError]
) -> dict[str, str | None]:
    """The normalized phone and email to set; DUPLICATE where another persona holds one."""
    values: dict[str, str | None] = {}
    for kind in (IdentityKind.PHONE, IdentityKind.EMAIL):
        if kind.value not in changes:
            continue
        valid, value = _contact(changes[kind.value], kind, org.default_region, errors)
        if not valid:
            continue
        if value is not None:
            other = await _holder(session, org.id, kind.value, value)
            if other is not None and other.id != persona.id:
                errors.append(_duplicate(kind.value, other))
                continue
        values[kind.value] = value
    return values


async def update_persona(
    session: AsyncSession, org: Organization, persona_id: uuid.UUID, changes: Mapping[str, Any]
) -> Persona:
    """Set the traits named in ``changes`` (None clears one); phone and email are normalized."""
    unknown = set(changes) - EDITABLE
    assert not unknown, f"not editable: {unknown}"
    persona = await _editable(session, org.id, persona_id)
    errors: list[UserError] = []
    values = await _trait_values(session, org.id, changes, errors)
    contacts = await _contact_values(session, org, persona, changes, errors)
    if not errors and contacts.get("phone", persona.phone) is None and contacts.get("email", persona.email) is None:
        cleared = "phone" if "phone" in contacts else "email"
        errors.append(UserError("NO_CONTACT_INFO", "A persona keeps a phone or an email.", ["input", cleared]))
    if errors:
        raise UserErrors(errors)
    for kind, value in contacts.items():
        await _swap_key(session, org.id, persona, kind, getattr(persona, kind), value)
    for name, value in {**values, **contacts}.items():
        setattr(persona, name, value)
    persona.updated_at = utcnow()
    await session.flush()
    return persona


# Custom attributes and tags -------------------------------------------------------


def _names(values: Sequence[str], path: list[str], what: str, errors: list[UserError]) -> list[str]:
    clean = []
    for i, raw in enumerate(values):
        value = raw.strip()
        if not value or len(value) > MAX_TEXT:
            errors.append(UserError("INVALID", f"A {what} has 1 to {MAX_TEXT} characters.", [*path, str(i)]))
        else:
            clean.append(value)
    return clean


async def update_custom_attributes(
    session: AsyncSession,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    set_: Sequence[tuple[str, str]],
    remove: Sequence[str],
) -> Persona:
    persona = await _editable(session, org_id, persona_id)
    errors: list[UserError] = []
    pairs: dict[str, str] = {}
    for i, (raw_key, value) in enumerate(set_):
        key = raw_key.strip()
        if not key or len(key) > MAX_TEXT:
            errors.append(
                UserError("INVALID", f"A key has 1 to {MAX_TEXT} characters.", ["input", "set", str(i), "key"])
            )
        elif key in pairs:
            errors.append(UserError("INVALID", f"{key!r} is set twice.", ["input", "set", str(i), "key"]))
        elif not value.strip():
            errors.append(
                UserError("INVALID", "A value may not be blank: remove the key.", ["input", "set", str(i), "value"])
            )
        else:
            pairs[key] = value
    removed = _names(remove, ["input", "remove"], "key", errors)
    for i, key in enumerate(removed):
        if key in pairs:
            errors.append(UserError("INVALID", f"{key!r} is both set and removed.", ["input", "remove", str(i)]))
    if errors:
        raise UserErrors(errors)
    if removed:
        await tags_attributes.remove_attributes(session, org_id, persona.id, removed)
    if pairs:
        await tags_attributes.set_attributes(session, org_id, persona.id, list(pairs.items()), AttributeSource.MANUAL)
    persona.updated_at = utcnow()
    await session.flush()
    return persona


async def set_tags(
    session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID, add: Sequence[str], remove: Sequence[str]
) -> Persona:
    persona = await _editable(session, org_id, persona_id)
    errors: list[UserError] = []
    added = _names(add, ["input", "add"], "tag", errors)
    removed = _names(remove, ["input", "remove"], "tag", errors)
    for i, tag in enumerate(removed):
        if tag in added:
            errors.append(UserError("INVALID", f"{tag!r} is both added and removed.", ["input", "remove", str(i)]))
    if errors:
        raise UserErrors(errors)
    if removed:
        await tags_attributes.remove_tags(session, org_id, persona.id, removed)
    if added:
        await tags_attributes.add_tags(session, org_id, persona.id, added)
    persona.updated_at = utcnow()
    await session.flush()
    return persona


# Consent ------------------------------------------------------------------------


async def set_opt_in(
    session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID, channel: Channel, status: OptInStatus
) -> Persona:
    """Staff record a consent; every change is a ConsentEvent with source STAFF and its time."""
    persona = await _editable(session, org_id, persona_id)
    field = ["input", "status"]
    if status is OptInStatus.OPTED_IN:
        if channel.value in consent.PUSH_CHANNELS:
            raise UserError(
                "CONSENT_REQUIRES_DEVICE",
                f"{channel.value} opt-in comes only from the customer's own device.",
                field,
            )
        current = await session.get(Consent, (org_id, persona.id, channel.value))
        by_privacy = (
            current is not None
            and current.status == OptInStatus.OPTED_OUT.value
            and current.source == ConsentSource.PRIVACY_REQUEST.value
        )
        if by_privacy or await consent.is_suppressed(session, org_id, persona):
            raise UserError(
                "OPTED_OUT",
                "The customer opted out by a privacy request: only their own new consent can opt them back in.",
                field,
            )
    await consent.record_consent(
        session, org_id, persona, channel=channel.value, status=status, source=ConsentSource.STAFF
    )
    persona.updated_at = utcnow()
    await session.flush()
    return persona
