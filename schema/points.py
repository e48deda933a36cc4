"""The card's Points tab: the overview and the reconciliation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import strawberry

from resolvers.card import points_overview, reconciliation
from schema.enums import PointsEntryKind


@strawberry.type(description="Every points figure of the Points tab.")
class PointsOverview:
    spent_all_time: Decimal = strawberry.field(description="Pre-tax, all time.")
    spent_as_member: Decimal = strawberry.field(description="Pre-tax spend on orders placed while enrolled in loyalty.")
    points: int = strawberry.field(description="The balance.")
    points_redeemed: int = strawberry.field(description="Net points spent on redemptions.")
    adjusted_by_staff: int
    boosted_by_audience: int
    gifted_by_campaign: int
    gifted_by_flow: int
    expired: int
    legacy_imported: int
    visit_points: int
    collectibles: int
    referral_sales: int
    last_redemption_at: dt.datetime | None
    last_redemption_discount: str | None

    @classmethod
    def of(cls, rollup: Any, last_redemption: Any) -> PointsOverview:
        return cls(
            **dataclasses.asdict(points_overview(rollup)),
            last_redemption_at=last_redemption.redeemed_at if last_redemption else None,
            last_redemption_discount=last_redemption.discount_name if last_redemption else None,
        )


@strawberry.type(description="One reason the balance differs from spend x accrual rate.")
class ReconciliationLine:
    kind: PointsEntryKind
    points: int
    explanation: str


@strawberry.type(description="Why points differ from spend x accrual rate (the FAQ, answered with numbers).")
class PointsReconciliation:
    expected_from_spend: int = strawberry.field(
        description="floor(spentAsMember x pointsPerDollar) at the current rate."
    )
    earned_from_orders: int = strawberry.field(description="Points actually earned from orders.")
    reasons: list[ReconciliationLine] = strawberry.field(
        description="One line per reason the balance differs from expectedFromSpend."
    )

    @classmethod
    def of(cls, rollup: Any, points_per_dollar_milli: int) -> PointsReconciliation:
        r = reconciliation(rollup, points_per_dollar_milli)
        return cls(
            expected_from_spend=r.expected_from_spend,
            earned_from_orders=r.earned_from_orders,
            reasons=[
                ReconciliationLine(kind=line.kind, points=line.points, explanation=line.explanation)
                for line in r.reasons
            ],
        )
