"""The card's figures, computed from the rollups (never from order history):
shopping habits, favorites, the points overview and the reconciliation that
answers "why don't my points match what I spent"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from models.enums import PointsEntryKind, PurchaseDimension
from resolvers.amounts import cents_to_decimal, milli_to_decimal
from resolvers.points import order_points

TOP = 5


@dataclass(frozen=True)
class Ranked:
    name: str
    count: int


@dataclass(frozen=True)
class PreferenceFigures:
    name: str
    count: int
    top: list[Ranked]


@dataclass(frozen=True)
class HabitFigures:
    spend_all_time: Decimal
    sales_count: int
    average_order: Decimal | None
    items_per_order: float | None
    last_seen_days: int | None
    shops_every_days: float | None
    preferred: dict[str, PreferenceFigures | None]


def ranked(purchase_counts: list[Any], dimension: PurchaseDimension, limit: int = TOP) -> list[Ranked]:
    """Most bought first; ties to the most recently bought (the loader's order)."""
    return [Ranked(r.name, r.order_count) for r in purchase_counts if r.dimension == dimension.value][:limit]


def shopping_habits(rollup: Any, purchase_counts: list[Any], now: dt.datetime) -> HabitFigures:
    count = rollup.orders_count if rollup else 0
    spend = rollup.spend_total_cents if rollup else 0
    average = (cents_to_decimal(spend) / count).quantize(Decimal("0.01"), ROUND_HALF_UP) if count else None
    last, first = (rollup.last_order_at, rollup.first_order_at) if rollup else (None, None)
    every = None
    if count >= 2 and last is not None and first is not None:
        every = round((last - first).total_seconds() / 86_400 / (count - 1), 2)
    preferred: dict[str, PreferenceFigures | None] = {}
    for dimension in PurchaseDimension:
        top = ranked(purchase_counts, dimension)
        preferred[dimension.value] = PreferenceFigures(top[0].name, top[0].count, top) if top else None
    return HabitFigures(
        spend_all_time=cents_to_decimal(spend),
        sales_count=count,
        average_order=average,
        items_per_order=round(rollup.items_count / count, 2) if count else None,
        last_seen_days=max(0, (now - last).days) if last is not None else None,
        shops_every_days=every,
        preferred=preferred,
    )


@dataclass(frozen=True)
class PointsFigures:
    spent_all_time: Decimal
    spent_as_member: Decimal
    points: int
    points_redeemed: int
    adjusted_by_staff: int
    boosted_by_audience: int
    gifted_by_campaign: int
    gifted_by_flow: int
    expired: int
    legacy_imported: int
    visit_points: int
    collectibles: int
    referral_sales: int


def kind_total(rollup: Any, kind: PointsEntryKind) -> int:
    """The sum of the persona's ledger entries of one kind, kept in the rollup row."""
    return int(getattr(rollup, f"points_{kind.value.lower()}", 0)) if rollup else 0


def points_overview(rollup: Any) -> PointsFigures:
    def total(kind: PointsEntryKind) -> int:
        return kind_total(rollup, kind)

    return PointsFigures(
        spent_all_time=cents_to_decimal(rollup.spend_subtotal_cents if rollup else 0),
        spent_as_member=cents_to_decimal(rollup.spend_member_subtotal_cents if rollup else 0),
        points=rollup.points_balance if rollup else 0,
        # Redemptions are negative entries (reversals positive): show what was spent.
        points_redeemed=-total(PointsEntryKind.REDEMPTION),
        adjusted_by_staff=total(PointsEntryKind.STAFF_ADJUSTMENT),
        boosted_by_audience=total(PointsEntryKind.AUDIENCE_BOOST),
        gifted_by_campaign=total(PointsEntryKind.CAMPAIGN_GIFT),
        gifted_by_flow=total(PointsEntryKind.FLOW_GIFT),
        expired=-total(PointsEntryKind.EXPIRATION),
        legacy_imported=total(PointsEntryKind.LEGACY_IMPORT),
        visit_points=total(PointsEntryKind.VISIT),
        collectibles=total(PointsEntryKind.COLLECTIBLE),
        referral_sales=total(PointsEntryKind.REFERRAL_SALE),
    )


@dataclass(frozen=True)
class Line:
    kind: PointsEntryKind
    points: int
    explanation: str


@dataclass(frozen=True)
class Reconciliation:
    expected_from_spend: int
    earned_from_orders: int
    reasons: list[Line]


_EXPLAIN: dict[PointsEntryKind, str] = {
    PointsEntryKind.VISIT: "{n} points for visits: each order placed as a member earns a flat visit bonus.",
    PointsEntryKind.REFERRAL_SALE: "{n} points for friends' purchases made with this customer's referral link.",
    PointsEntryKind.REDEMPTION: "{n} points spent on discounts (net of reversed redemptions).",
    PointsEntryKind.STAFF_ADJUSTMENT: "{n} points adjusted by staff by hand.",
    PointsEntryKind.AUDIENCE_BOOST: "{n} extra points from audience multipliers on orders.",
    PointsEntryKind.CAMPAIGN_GIFT: "{n} points gifted by marketing campaigns.",
    PointsEntryKind.FLOW_GIFT: "{n} points gifted by automated flows.",
    PointsEntryKind.COLLECTIBLE: "{n} points from collectibles.",
    PointsEntryKind.LEGACY_IMPORT: "{n} points carried over from a previous loyalty program.",
    PointsEntryKind.EXPIRATION: "{n} points expired unused.",
}


def reconciliation(rollup: Any, points_per_dollar_milli: int) -> Reconciliation:
    member_spend = rollup.spend_member_subtotal_cents if rollup else 0
    expected = order_points(member_spend, points_per_dollar_milli)
    earned = int(rollup.points_order) if rollup else 0
    lines = []
    if earned != expected:
        rate = milli_to_decimal(points_per_dollar_milli)
        lines.append(
            Line(
                PointsEntryKind.ORDER,
                earned - expected,
                f"Orders earned {earned} points where {rate} per dollar of member spend gives {expected}: "
                "the rate changed since, or orders were placed while archived or before enrolment, "
                "or whole points were rounded down per order.",
            )
        )
    for kind, text in _EXPLAIN.items():
        points = kind_total(rollup, kind)
        if points:
            lines.append(Line(kind, points, text.format(n=f"{points:+d}")))
    return Reconciliation(expected_from_spend=expected, earned_from_orders=earned, reasons=lines)
