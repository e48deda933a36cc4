"""Loaders for the History tab's nodes: an order's lines and earned points, and
the order or redemption a points entry belongs to."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loaders.base import OrgLoader, keys_param, one_per_key, org_param
from models import Order, OrderLine, PointsEntry, Redemption
from models.enums import PointsEntryKind
from resolvers.history import HistoryKind, history_counts

ORDERS = Order.__table__  # type: ignore[attr-defined]
ORDER_LINES = OrderLine.__table__  # type: ignore[attr-defined]
ENTRIES = PointsEntry.__table__  # type: ignore[attr-defined]
REDEMPTIONS = Redemption.__table__  # type: ignore[attr-defined]

# What an order earned its buyer: REFERRAL_SALE entries tied to the order went to the referrer.
EARNED_KINDS = (PointsEntryKind.ORDER.value, PointsEntryKind.VISIT.value, PointsEntryKind.AUDIENCE_BOOST.value)

LINES_OF = (
    select(ORDER_LINES)
    .where(ORDER_LINES.c.org_id == org_param(), ORDER_LINES.c.order_id.in_(keys_param()))
    .order_by(ORDER_LINES.c.order_id, ORDER_LINES.c.line_no)
)
EARNED_BY = (
    select(ENTRIES.c.order_id, func.sum(ENTRIES.c.delta).label("points"))
    .where(ENTRIES.c.org_id == org_param(), ENTRIES.c.order_id.in_(keys_param()), ENTRIES.c.kind.in_(EARNED_KINDS))
    .group_by(ENTRIES.c.order_id)
)
ORDERS_BY_ID = select(ORDERS).where(ORDERS.c.org_id == org_param(), ORDERS.c.id.in_(keys_param()))
REDEMPTIONS_BY_ID = select(REDEMPTIONS).where(REDEMPTIONS.c.org_id == org_param(), REDEMPTIONS.c.id.in_(keys_param()))


class OrderLinesByOrderLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        by_order: dict[uuid.UUID, list[Row[Any]]] = defaultdict(list)
        for row in await conn.execute(LINES_OF, self.params(keys)):
            by_order[row.order_id].append(row)
        return [by_order.get(k, []) for k in keys]


class PointsEarnedByOrderLoader(OrgLoader[uuid.UUID, int]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[int]:
        earned = {r.order_id: int(r.points) for r in await conn.execute(EARNED_BY, self.params(keys))}
        return [earned.get(k, 0) for k in keys]


class OrderLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        return one_per_key(await conn.execute(ORDERS_BY_ID, self.params(keys)), keys)


class RedemptionLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        return one_per_key(await conn.execute(REDEMPTIONS_BY_ID, self.params(keys)), keys)


class HistoryCountLoader(OrgLoader[tuple[uuid.UUID, HistoryKind], int]):
    """totalCount of a persona's history connection of one kind: every count a request asks
    for in one statement."""

    async def fetch(self, conn: AsyncConnection, keys: list[tuple[uuid.UUID, HistoryKind]]) -> list[int]:
        return await history_counts(conn, self.org_id, keys)
