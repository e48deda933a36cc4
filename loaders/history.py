"""Loaders for the History tab's nodes: an order's lines and earned points, and
the order or redemption a points entry belongs to."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loaders.base import OrgLoader
from models import Order, OrderLine, PointsEntry, Redemption
from models.enums import PointsEntryKind

ORDERS = Order.__table__  # type: ignore[attr-defined]
ORDER_LINES = OrderLine.__table__  # type: ignore[attr-defined]
ENTRIES = PointsEntry.__table__  # type: ignore[attr-defined]
REDEMPTIONS = Redemption.__table__  # type: ignore[attr-defined]

# What an order earned its buyer: REFERRAL_SALE entries tied to the order went to the referrer.
EARNED_KINDS = (PointsEntryKind.ORDER.value, PointsEntryKind.VISIT.value, PointsEntryKind.AUDIENCE_BOOST.value)


class OrderLinesByOrderLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        stmt = (
            select(ORDER_LINES)
            .where(ORDER_LINES.c.org_id == self.org_id, ORDER_LINES.c.order_id.in_(keys))
            .order_by(ORDER_LINES.c.order_id, ORDER_LINES.c.line_no)
        )
        by_order: dict[uuid.UUID, list[Row[Any]]] = defaultdict(list)
        for row in await conn.execute(stmt):
            by_order[row.order_id].append(row)
        return [by_order.get(k, []) for k in keys]


class PointsEarnedByOrderLoader(OrgLoader[uuid.UUID, int]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[int]:
        stmt = (
            select(ENTRIES.c.order_id, func.sum(ENTRIES.c.delta).label("points"))
            .where(ENTRIES.c.org_id == self.org_id, ENTRIES.c.order_id.in_(keys), ENTRIES.c.kind.in_(EARNED_KINDS))
            .group_by(ENTRIES.c.order_id)
        )
        earned = {r.order_id: int(r.points) for r in await conn.execute(stmt)}
        return [earned.get(k, 0) for k in keys]


class OrderLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        rows = await conn.execute(select(ORDERS).where(ORDERS.c.org_id == self.org_id, ORDERS.c.id.in_(keys)))
        found = {r.id: r for r in rows}
        return [found.get(k) for k in keys]


class RedemptionLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        stmt = select(REDEMPTIONS).where(REDEMPTIONS.c.org_id == self.org_id, REDEMPTIONS.c.id.in_(keys))
        found = {r.id: r for r in await conn.execute(stmt)}
        return [found.get(k) for k in keys]
