"""Discounts: the root list and the card's Discounts tab."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry

from models.base import utcnow
from resolvers.discounts import is_active
from schema.context import Info
from schema.ids import to_global_id
from schema.relay import Node


@strawberry.type(description="A reward a persona can buy with points.")
class Discount(Node):
    name: str
    points_cost: int
    starts_at: dt.datetime | None = strawberry.field(description="When it becomes redeemable; null: always was.")
    ends_at: dt.datetime | None = strawberry.field(description="When it stops being redeemable; null: never.")

    @classmethod
    def from_row(cls, row: Any) -> Discount:
        return cls(
            id=strawberry.ID(to_global_id("Discount", row.id)),
            name=row.name,
            points_cost=row.points_cost,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
        )


@strawberry.type(description="A discount as one persona sees it: how close they are to it.")
class DiscountOffer:
    discount: Discount
    progress: float = strawberry.field(description="min(1, points / pointsCost): what the progress bar shows.")
    points_needed: int = strawberry.field(description="Points still missing: max(0, pointsCost - points).")
    can_redeem: bool

    @classmethod
    def of(cls, row: Any, points: int) -> DiscountOffer:
        cost = row.points_cost
        return cls(
            discount=Discount.from_row(row),
            progress=1.0 if cost <= 0 else min(1.0, points / cost),
            points_needed=max(0, cost - points),
            can_redeem=points >= cost,
        )


async def active_discount_rows(info: Info) -> list[Any]:
    now = utcnow()
    return [d for d in await info.context.loaders.discounts.load("all") if is_active(d, now)]


@strawberry.type
class DiscountQuery:
    @strawberry.field(description="The organization's discounts; by default only those active now.")
    async def discounts(self, info: Info, active_only: bool | None = True) -> list[Discount]:
        rows = await active_discount_rows(info) if active_only else await info.context.loaders.discounts.load("all")
        return [Discount.from_row(r) for r in rows]
