"""What staff and campaigns do with points: adjust, award, redeem, reverse a
redemption, create a discount (expiring old points: resolvers/points_expiry.py).

Every change goes through the ledger (resolvers/points.py), so the cached
balance moves in the same atomic statement as the entry and never goes below
zero. The calls that move points take an optional idempotency key
(resolvers/idempotency.py). The caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Discount, Persona, Redemption
from models.base import utcnow
from models.enums import PointsEntryKind, RedemptionStatus
from models.tables import REDEMPTIONS
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
