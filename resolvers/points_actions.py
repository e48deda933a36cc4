"""What staff and campaigns do with points: adjust, award, redeem, reverse a
redemption, create a discount, and expire old points.

Every change goes through the ledger (resolvers/points.py), so the cached
balance moves in the same atomic statement as the entry and never goes below
zero. The calls that move points take an optional idempotency key
(resolvers/idempotency.py). The caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Discount, Organization, Persona, PersonaRollup, PointsEntry, Redemption
from models.base import utcnow
from models.enums import PointsEntryKind, RedemptionStatus
from models.tables import ENTRIES, REDEMPTIONS, ROLLUPS
from resolvers import discounts, idempotency
from resolvers.errors import UserError, UserErrors
from resolvers.points import post_entry
from resolvers.profile import get_persona

# What awardPoints may give; the other kinds come from orders, staff and the ledger itself.
AWARDABLE = frozenset(
    {
        PointsEntryKind.CAMPAIGN_GIFT,
        PointsEntryKind.FLOW_GIFT,
        PointsEntryKind.COLLECTIBLE,
        PointsEntryKind.AUDIENCE_BOOST,
        PointsEntryKind.LEGACY_IMPORT,
    }
)
# Earned points that never expire.
NEVER_EXPIRE = frozenset({PointsEntryKind.LEGACY_IMPORT.value, PointsEntryKind.AUDIENCE_BOOST.value})
MAX_NOTE = 1000
MAX_NAME = 200


@dataclass(frozen=True)
class PointsMove:
    """The result of a points mutation, by id: what a replay hands back."""

    persona_id: uuid.UUID
    entry_id: uuid.UUID | None = None
    redemption_id: uuid.UUID | None = None

    def encode(self) -> idempotency.Result:
        found = {"persona": self.persona_id.hex}
        if self.entry_id is not None:
            found["entry"] = self.entry_id.hex
        if self.redemption_id is not None:
            found["redemption"] = self.redemption_id.hex
        return found

    @classmethod
    def decode(cls, stored: idempotency.Result) -> PointsMove:
        def get(name: str) -> uuid.UUID | None:
            return uuid.UUID(stored[name]) if name in stored else None

        return cls(uuid.UUID(stored["persona"]), get("entry"), get("redemption"))


async def _points_holder(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> Persona:
    """A persona whose points may move: in this org, not merged away, not archived."""
    field = ["input", "personaId"]
    # Not locked: the balance moves in one conditional UPDATE of the rollup row,
    # and locking the persona too would order locks against ingestion's merges.
    persona = await get_persona(session, org_id, persona_id, field, lock=False)
    if persona.merged_into_id is not None:
        raise UserError("ALREADY_MERGED", "This persona was merged into another: its points live there.", field)
    if persona.archived_at is not None:
        raise UserError("ARCHIVED", "This persona is archived: restore it before its points change.", field)
    return persona


def _note(note: str | None, *, required: bool) -> str | None:
    value = (note or "").strip()
    if required and not value:
        raise UserError("INVALID", "Say why in a note.", ["input", "note"])
    if len(value) > MAX_NOTE:
        raise UserError("INVALID", f"A note has at most {MAX_NOTE} characters.", ["input", "note"])
    return value or None


async def _entry_once(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    kind: PointsEntryKind,
    delta: int,
    note: str | None,
    actor: str,
    field: list[str],
    key: str | None,
    operation: str,
    arguments: dict[str, object],
) -> PointsMove:
    """One ledger entry for a persona whose points may move; a replayed key returns the first move."""

    async def work() -> idempotency.Result:
        await _points_holder(session, org_id, persona_id)
        entry = await post_entry(
            session,
            org_id=org_id,
            persona_id=persona_id,
            kind=kind,
            delta=delta,
            note=note,
            actor=actor,
            field=field,
        )
        return PointsMove(persona_id, entry_id=entry.id).encode()

    stored = await idempotency.run_once(
        session, org_id=org_id, key=key, operation=operation, arguments=arguments, work=work
    )
    return PointsMove.decode(stored)


async def adjust_points(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    delta: int,
    note: str,
    actor: str,
    idempotency_key: str | None = None,
) -> PointsMove:
    """A STAFF_ADJUSTMENT entry that records who made it; NEGATIVE_BALANCE below zero."""
    errors = []
    if delta == 0:
        errors.append(UserError("INVALID", "delta may not be 0.", ["input", "delta"]))
    try:
        clean_note = _note(note, required=True)
    except UserError as e:
        errors.append(e)
    if errors:
        raise UserErrors(errors)
    return await _entry_once(
        session,
        org_id=org_id,
        persona_id=persona_id,
        kind=PointsEntryKind.STAFF_ADJUSTMENT,
        delta=delta,
        note=clean_note,
        actor=actor,
        field=["input", "delta"],
        key=idempotency_key,
        operation="adjustPoints",
        arguments={"personaId": persona_id.hex, "delta": delta, "note": note},
    )


async def award_points(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    kind: PointsEntryKind,
    points: int,
    note: str | None,
    actor: str,
    idempotency_key: str | None = None,
) -> PointsMove:
    """Gift points of one of the AWARDABLE kinds."""
    errors = []
    if kind not in AWARDABLE:
        allowed = ", ".join(sorted(k.value for k in AWARDABLE))
        errors.append(UserError("INVALID", f"awardPoints gives only {allowed}.", ["input", "kind"]))
    if points <= 0:
        errors.append(UserError("INVALID", "points must be positive.", ["input", "points"]))
    try:
        clean_note = _note(note, required=False)
    except UserError as e:
        errors.append(e)
    if errors:
        raise UserErrors(errors)
    return await _entry_once(
        session,
        org_id=org_id,
        persona_id=persona_id,
        kind=kind,
        delta=points,
        note=clean_note,
        actor=actor,
        field=["input", "points"],
        key=idempotency_key,
        operation="awardPoints",
        arguments={"personaId": persona_id.hex, "kind": kind.value, "points": points, "note": note},
    )


async def redeem_discount(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    discount_id: uuid.UUID,
    actor: str,
    idempotency_key: str | None = None,
) -> PointsMove:
    """Spend the discount's cost atomically: DISCOUNT_NOT_ACTIVE, INSUFFICIENT_POINTS."""

    async def work() -> idempotency.Result:
        discount = await session.get(Discount, (org_id, discount_id))
        if discount is None:
            raise UserError("NOT_FOUND", "No such discount.", ["input", "discountId"])
        await _points_holder(session, org_id, persona_id)
        redemption = await discounts.redeem(
            session,
            org_id=org_id,
            persona_id=persona_id,
            discount=discount,
            actor=actor,
            field=["input", "discountId"],
        )
        return PointsMove(persona_id, redemption_id=redemption.id).encode()

    arguments = {"personaId": persona_id.hex, "discountId": discount_id.hex}
    stored = await idempotency.run_once(
        session, org_id=org_id, key=idempotency_key, operation="redeemDiscount", arguments=arguments, work=work
    )
    return PointsMove.decode(stored)


async def reverse_redemption(
    session: AsyncSession, *, org_id: uuid.UUID, redemption_id: uuid.UUID, note: str | None, actor: str
) -> PointsMove:
    """Give a redemption's points back: status REVERSED and a balancing REDEMPTION entry."""
    field = ["input", "redemptionId"]
    clean_note = _note(note, required=False)
    now = utcnow()
    # One conditional UPDATE: of two concurrent reversals, only one finds it REDEEMED.
    flipped = await session.execute(
        update(REDEMPTIONS)
        .where(
            REDEMPTIONS.c.org_id == org_id,
            REDEMPTIONS.c.id == redemption_id,
            REDEMPTIONS.c.status == RedemptionStatus.REDEEMED.value,
        )
        .values(status=RedemptionStatus.REVERSED.value, reversed_at=now)
        .returning(REDEMPTIONS.c.persona_id, REDEMPTIONS.c.points, REDEMPTIONS.c.discount_name)
    )
    row = flipped.one_or_none()
    if row is None:
        existing = await session.get(Redemption, (org_id, redemption_id))
        if existing is None:
            raise UserError("NOT_FOUND", "No such redemption.", field)
        raise UserError("INVALID", "This redemption was already reversed.", field)
    persona_id, points, name = row
    await post_entry(
        session,
        org_id=org_id,
        persona_id=persona_id,
        kind=PointsEntryKind.REDEMPTION,
        delta=points,
        note=clean_note or f"reversed: {name}",
        actor=actor,
        redemption_id=redemption_id,
        at=now,
    )
    return PointsMove(persona_id, redemption_id=redemption_id)


async def create_discount(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    name: str,
    points_cost: int,
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
) -> Discount:
    errors = []
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME:
        errors.append(
            UserError("INVALID", f"A discount needs a name of 1 to {MAX_NAME} characters.", ["input", "name"])
        )
    if points_cost <= 0:
        errors.append(UserError("INVALID", "pointsCost must be positive.", ["input", "pointsCost"]))
    for value, name_ in ((starts_at, "startsAt"), (ends_at, "endsAt")):
        if value is not None and value.tzinfo is None:
            errors.append(UserError("INVALID", f"{name_} needs a time zone.", ["input", name_]))
    if not errors and starts_at is not None and ends_at is not None and starts_at >= ends_at:
        errors.append(UserError("INVALID", "endsAt must come after startsAt.", ["input", "endsAt"]))
    if errors:
        raise UserErrors(errors)
    discount = Discount(org_id=org_id, name=clean, points_cost=points_cost, starts_at=starts_at, ends_at=ends_at)
    session.add(discount)
    await session.flush()
    return discount


# Expiry ----------------------------------------------------------------------


@dataclass(frozen=True)
class Expired:
    personas: int
    points: int


@dataclass
class _Lot:
    """Points one entry added, and how many of them are left."""

    kind: str
    remaining: int
    created_at: dt.datetime


def expiring_points(entries: list[tuple[str, int, dt.datetime]], cutoff: dt.datetime) -> int:
    """How many points of this ledger, given in (created_at, id) order, are due to expire.

    Points are spent first-in first-out: every spend uses up the oldest
    points left, whatever their kind. An EXPIRATION entry uses up only
    expiring points (it expired exactly those), so what it expired never
    expires twice. Points earned at or before the cutoff that are still
    there, of a kind that expires, are due.
    """
    lots: deque[_Lot] = deque()
    for kind, delta, created_at in entries:
        if delta > 0:
            lots.append(_Lot(kind, delta, created_at))
            continue
        owed = -delta
        for lot in lots:
            if owed == 0:
                break
            if kind == PointsEntryKind.EXPIRATION.value and lot.kind in NEVER_EXPIRE:
                continue
            taken = min(owed, lot.remaining)
            lot.remaining -= taken
            owed -= taken
        while lots and lots[0].remaining == 0:
            lots.popleft()
    return sum(lot.remaining for lot in lots if lot.kind not in NEVER_EXPIRE and lot.created_at <= cutoff)


async def _due_personas(session: AsyncSession, org_id: uuid.UUID, cutoff: dt.datetime) -> list[uuid.UUID]:
    """Personas with a balance and an expiring entry old enough; the rest cannot have points due."""
    rollups, entries = ROLLUPS, ENTRIES
    stmt = (
        select(entries.c.persona_id)
        .join(rollups, (rollups.c.org_id == entries.c.org_id) & (rollups.c.persona_id == entries.c.persona_id))
        .where(
            entries.c.org_id == org_id,
            entries.c.delta > 0,
            entries.c.kind.not_in(sorted(NEVER_EXPIRE)),
            entries.c.created_at <= cutoff,
            rollups.c.points_balance > 0,
        )
        .distinct()
    )
    return sorted((await session.execute(stmt)).scalars())


async def expire_persona_points(
    session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID, cutoff: dt.datetime, now: dt.datetime
) -> int:
    """Post one EXPIRATION entry for what is due; the points expired."""
    # Lock the rollup first: no entry lands between reading the ledger and posting.
    await session.execute(
        select(col(PersonaRollup.persona_id))
        .where(col(PersonaRollup.org_id) == org_id, col(PersonaRollup.persona_id) == persona_id)
        .with_for_update()
    )
    rows = await session.execute(
        select(col(PointsEntry.kind), col(PointsEntry.delta), col(PointsEntry.created_at))
        .where(col(PointsEntry.org_id) == org_id, col(PointsEntry.persona_id) == persona_id)
        .order_by(col(PointsEntry.created_at), col(PointsEntry.id))
    )
    due = expiring_points([(k, d, t) for k, d, t in rows.all()], cutoff)
    if due <= 0:
        return 0
    await post_entry(
        session,
        org_id=org_id,
        persona_id=persona_id,
        kind=PointsEntryKind.EXPIRATION,
        delta=-due,
        note=f"points earned on or before {cutoff.date().isoformat()} expired",
        at=now,
    )
    return due


async def organizations_with_expiry(session: AsyncSession) -> list[Organization]:
    rows = await session.execute(
        select(Organization)
        .where(col(Organization.points_expire_after_days).is_not(None))
        .order_by(col(Organization.slug))
    )
    return list(rows.scalars())


async def expire_points(
    new_session: Callable[[], AsyncSession], org: Organization, *, now: dt.datetime | None = None, batch: int = 200
) -> Expired:
    """Expire what is due for every persona of the organization, ``batch`` personas per transaction.

    Idempotent: what an earlier run expired is no longer there to expire.
    """
    if org.points_expire_after_days is None:
        return Expired(0, 0)
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=org.points_expire_after_days)
    async with new_session() as session:
        due = await _due_personas(session, org.id, cutoff)
    personas = points = 0
    for start in range(0, len(due), batch):
        async with new_session() as session, session.begin():
            for persona_id in due[start : start + batch]:
                expired = await expire_persona_points(session, org.id, persona_id, cutoff, now)
                personas += expired > 0
                points += expired
    return Expired(personas, points)
