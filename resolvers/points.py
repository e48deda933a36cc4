"""The points ledger: every change is an appended entry, and the cached
balance moves in the same statement-level-atomic UPDATE, so two concurrent
spends that the balance covers once give one success and one refusal."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import PointsEntry
from models.base import utcnow
from models.enums import PointsEntryKind
from models.tables import ENTRIES, ROLLUPS
from resolvers.errors import UserError
from resolvers.upsert import insert_rows

# What an order earns its buyer: the ledger kinds an order's accrual writes (a REFERRAL_SALE
# tied to the order went to the referrer): Order.pointsEarned, and whether an order was credited.
EARNED_KINDS = (PointsEntryKind.ORDER.value, PointsEntryKind.VISIT.value, PointsEntryKind.AUDIENCE_BOOST.value)

# The rollup column that totals each ledger kind.
KIND_COLUMN: dict[PointsEntryKind, str] = {kind: f"points_{kind.value.lower()}" for kind in PointsEntryKind}


async def post_entry(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    kind: PointsEntryKind,
    delta: int,
    note: str | None = None,
    actor: str | None = None,
    order_id: uuid.UUID | None = None,
    redemption_id: uuid.UUID | None = None,
    at: dt.datetime | None = None,
    shortfall_code: str = "NEGATIVE_BALANCE",
    field: list[str] | None = None,
) -> PointsEntry:
    """Append one entry; refuse (shortfall_code) if the balance would go below zero."""
    entries = await post_entries(
        session,
        org_id=org_id,
        persona_id=persona_id,
        deltas=[(kind, delta)],
        note=note,
        actor=actor,
        order_id=order_id,
        redemption_id=redemption_id,
        at=at,
        shortfall_code=shortfall_code,
        field=field,
    )
    return entries[0]


async def post_entries(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    deltas: list[tuple[PointsEntryKind, int]],
    note: str | None = None,
    actor: str | None = None,
    order_id: uuid.UUID | None = None,
    redemption_id: uuid.UUID | None = None,
    at: dt.datetime | None = None,
    shortfall_code: str = "NEGATIVE_BALANCE",
    field: list[str] | None = None,
) -> list[PointsEntry]:
    """Append entries of one event (e.g. an order's ORDER, VISIT and BOOST) with a
    single balance update: all of them, or none if the balance would go negative."""
    total = sum(delta for _, delta in deltas)
    per_column: dict[str, object] = {}
    for kind, delta in deltas:
        column = ROLLUPS.c[KIND_COLUMN[kind]]
        per_column[column.name] = per_column.get(column.name, column) + delta  # type: ignore[operator]
    moved = await session.execute(
        update(ROLLUPS)
        .where(
            ROLLUPS.c.org_id == org_id,
            ROLLUPS.c.persona_id == persona_id,
            ROLLUPS.c.points_balance + total >= 0,
        )
        .values(points_balance=ROLLUPS.c.points_balance + total, **per_column)
        .returning(ROLLUPS.c.points_balance)
    )
    balance = moved.scalar_one_or_none()
    if balance is None:
        raise UserError(shortfall_code, "Not enough points: the balance may not go below zero.", field)
    when = at or utcnow()
    running = balance - total
    entries = []
    for kind, delta in deltas:
        running += delta
        entries.append(
            PointsEntry(
                org_id=org_id,
                persona_id=persona_id,
                kind=kind.value,
                delta=delta,
                balance_after=running,
                note=note,
                actor=actor,
                order_id=order_id,
                redemption_id=redemption_id,
                created_at=when,
            )
        )
    # Core inserts: ledger rows are write-once, and a batch of thousands kept in
    # the session's identity map would slow every later flush. One statement for the
    # batch: the history counts' triggers (migration 0005) run once per statement.
    await insert_rows(session, ENTRIES, [e.model_dump() for e in entries])
    return entries


def order_points(subtotal_cents: int, points_per_dollar_milli: int) -> int:
    """floor(subtotal in dollars x pointsPerDollar), in exact integer arithmetic."""
    return (subtotal_cents * points_per_dollar_milli) // 100_000


def boost_points(order_points_: int, multiplier_milli: int) -> int:
    """The extra points a multiplier gives beyond the base: floor(points x (m - 1))."""
    return max(0, (order_points_ * (multiplier_milli - 1000)) // 1000)
