"""Loaders for the History tab's nodes: an order's lines and earned points, and
the order or redemption a points entry belongs to."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from coalesce import RowLike
from loaders.base import GroupedBy, OnePerKey, OrgLoader, keys_in, org_param
from models.tables import ENTRIES, ORDER_LINES, ORDERS, REDEMPTIONS
from resolvers.history import HistoryKind, history_counts
from resolvers.points import EARNED_KINDS

LINES_OF = (
    select(ORDER_LINES)
    .where(ORDER_LINES.c.org_id == org_param(), keys_in(ORDER_LINES.c.order_id))
    .order_by(ORDER_LINES.c.order_id, ORDER_LINES.c.line_no)
)
EARNED_BY = (
    select(ENTRIES.c.order_id, func.sum(ENTRIES.c.delta).label("points"))
    .where(ENTRIES.c.org_id == org_param(), keys_in(ENTRIES.c.order_id), ENTRIES.c.kind.in_(EARNED_KINDS))
    .group_by(ENTRIES.c.order_id)
)
ORDERS_BY_ID = select(ORDERS).where(ORDERS.c.org_id == org_param(), keys_in(ORDERS.c.id))
REDEMPTIONS_BY_ID = select(REDEMPTIONS).where(REDEMPTIONS.c.org_id == org_param(), keys_in(REDEMPTIONS.c.id))


class OrderLinesByOrderLoader(OrgLoader[uuid.UUID, list[RowLike]]):
    statement = LINES_OF
    shape = GroupedBy("order_id")


def _earned(rows: Sequence[RowLike], keys: Sequence[Any], /) -> list[Any]:
    earned = {r.order_id: int(r.points) for r in rows}
    return [earned.get(k, 0) for k in keys]


class PointsEarnedByOrderLoader(OrgLoader[uuid.UUID, int]):
    statement = EARNED_BY
    shape = staticmethod(_earned)


class OrderLoader(OrgLoader[uuid.UUID, RowLike | None]):
    statement = ORDERS_BY_ID
    shape = OnePerKey()


class RedemptionLoader(OrgLoader[uuid.UUID, RowLike | None]):
    statement = REDEMPTIONS_BY_ID
    shape = OnePerKey()


class HistoryCountLoader(OrgLoader[tuple[uuid.UUID, HistoryKind], int]):
    """totalCount of a persona's history connection of one kind: every count a request asks
    for in one statement."""

    async def fetch(self, keys: list[tuple[uuid.UUID, HistoryKind]]) -> list[int]:
        return await history_counts(self.db.select, self.org_id, keys)
