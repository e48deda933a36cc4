"""Discounts bought with points, and redeeming them atomically."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Discount, Redemption
from models.base import utcnow
from models.enums import PointsEntryKind, RedemptionStatus
from resolvers.errors import UserError
from resolvers.points import post_entry


def is_active(discount: object, now: dt.datetime) -> bool:
    starts_at = getattr(discount, "starts_at", None)
    ends_at = getattr(discount, "ends_at", None)
    return (starts_at is None or starts_at <= now) and (ends_at is None or now < ends_at)


async def active_discounts(session: AsyncSession, org_id: uuid.UUID, now: dt.datetime | None = None) -> list[Discount]:
    now = now or utcnow()
    rows = (await session.execute(select(Discount).where(col(Discount.org_id) == org_id))).scalars().all()
    return [d for d in rows if is_active(d, now)]


async def redeem(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    discount: Discount,
    actor: str | None,
    at: dt.datetime | None = None,
    field: list[str] | None = None,
) -> Redemption:
    """Spend the discount's points: a REDEMPTION entry and a Redemption, or INSUFFICIENT_POINTS."""
    when = at or utcnow()
    if not is_active(discount, when):
        raise UserError("DISCOUNT_NOT_ACTIVE", f"{discount.name} is not active now.", field)
    redemption = Redemption(
        org_id=org_id,
        persona_id=persona_id,
        discount_id=discount.id,
        discount_name=discount.name,
        points=discount.points_cost,
        status=RedemptionStatus.REDEEMED.value,
        actor=actor,
        redeemed_at=when,
    )
    session.add(redemption)
    await session.flush()
    await post_entry(
        session,
        org_id=org_id,
        persona_id=persona_id,
        kind=PointsEntryKind.REDEMPTION,
        delta=-discount.points_cost,
        note=discount.name,
        actor=actor,
        redemption_id=redemption.id,
        at=when,
        shortfall_code="INSUFFICIENT_POINTS",
        field=field,
    )
    return redemption
