"""Recomputing the rollups from the raw rows: the rebuild command, and the
yardstick the tests hold the incrementally kept rollups to."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.enums import PointsEntryKind, PurchaseDimension
from models.tables import ENTRIES, ORDER_LINES, ORDERS, PERSONAS, PURCHASE_COUNTS, ROLLUPS
from resolvers.points import KIND_COLUMN

ROLLUP_FIGURES = (
    "points_balance",
    "orders_count",
    "items_count",
    "spend_total_cents",
    "spend_subtotal_cents",
    "spend_member_subtotal_cents",
    "first_order_at",
    "last_order_at",
    *KIND_COLUMN.values(),
)


@dataclass
class Recomputed:
    figures: dict[str, Any]
    purchase_counts: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)


async def recompute(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> Recomputed:
    """Every rollup figure of one persona, from its orders, lines and ledger entries."""
    o = ORDERS.c
    orders = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(o.item_count), 0),
                func.coalesce(func.sum(o.total_cents), 0),
                func.coalesce(func.sum(o.subtotal_cents), 0),
                func.min(o.placed_at),
                func.max(o.placed_at),
            ).where(o.org_id == org_id, o.persona_id == persona_id)
        )
    ).one()
    member_spend = (
        await session.execute(
            select(func.coalesce(func.sum(o.subtotal_cents), 0)).where(
                o.org_id == org_id, o.persona_id == persona_id, o.member_at_order.is_(True)
            )
        )
    ).scalar_one()
    e = ENTRIES.c
    per_kind: dict[str, int] = dict(
        (
            await session.execute(
                select(e.kind, func.sum(e.delta)).where(e.org_id == org_id, e.persona_id == persona_id).group_by(e.kind)
            )
        ).all()
    )
    figures: dict[str, Any] = {
        "points_balance": int(sum(per_kind.values())),
        "orders_count": int(orders[0]),
        "items_count": int(orders[1]),
        "spend_total_cents": int(orders[2]),
        "spend_subtotal_cents": int(orders[3]),
        "spend_member_subtotal_cents": int(member_spend),
        "first_order_at": orders[4],
        "last_order_at": orders[5],
    }
    for kind in PointsEntryKind:
        figures[KIND_COLUMN[kind]] = int(per_kind.get(kind.value, 0))
    return Recomputed(figures, await _purchase_counts(session, org_id, persona_id))


async def _purchase_counts(
    session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID
) -> dict[tuple[str, str], tuple[int, Any]]:
    o, ln = ORDERS.c, ORDER_LINES.c
    counts: dict[tuple[str, str], tuple[int, Any]] = {}
    columns: dict[PurchaseDimension, Callable[[], Any]] = {
        PurchaseDimension.PRODUCT: lambda: ln.product,
        PurchaseDimension.BRAND: lambda: ln.brand,
        PurchaseDimension.CATEGORY: lambda: ln.category,
    }
    for dimension, column in columns.items():
        name = column()
        rows = await session.execute(
            select(name, func.count(func.distinct(o.id)), func.max(o.placed_at))
            .select_from(ORDER_LINES.join(ORDERS, (ln.org_id == o.org_id) & (ln.order_id == o.id)))
            .where(o.org_id == org_id, o.persona_id == persona_id, name.is_not(None))
            .group_by(name)
        )
        for value, count, latest in rows:
            counts[(dimension.value, value)] = (int(count), latest)
    return counts


async def stored(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> Recomputed:
    """The rollup figures as kept incrementally, in the shape of recompute()."""
    row = (
        await session.execute(select(ROLLUPS).where(ROLLUPS.c.org_id == org_id, ROLLUPS.c.persona_id == persona_id))
    ).one()
    counts = await session.execute(
        select(
            PURCHASE_COUNTS.c.dimension,
            PURCHASE_COUNTS.c.name,
            PURCHASE_COUNTS.c.order_count,
            PURCHASE_COUNTS.c.last_purchased_at,
        ).where(
            PURCHASE_COUNTS.c.org_id == org_id,
            PURCHASE_COUNTS.c.persona_id == persona_id,
            PURCHASE_COUNTS.c.order_count > 0,
        )
    )
    return Recomputed(
        {name: getattr(row, name) for name in ROLLUP_FIGURES},
        {(d, n): (c, t) for d, n, c, t in counts},
    )


async def rebuild(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> bool:
    """Rewrite one persona's rollups from the raw rows; True when they had drifted."""
    fresh = await recompute(session, org_id, persona_id)
    before = await stored(session, org_id, persona_id)
    if _same(before, fresh):
        return False
    await session.execute(
        update(ROLLUPS).where(ROLLUPS.c.org_id == org_id, ROLLUPS.c.persona_id == persona_id).values(**fresh.figures)
    )
    await session.execute(
        delete(PURCHASE_COUNTS).where(PURCHASE_COUNTS.c.org_id == org_id, PURCHASE_COUNTS.c.persona_id == persona_id)
    )
    if fresh.purchase_counts:
        await session.execute(
            insert(PURCHASE_COUNTS),
            [
                {
                    "org_id": org_id,
                    "persona_id": persona_id,
                    "dimension": d,
                    "name": n,
                    "order_count": c,
                    "last_purchased_at": t,
                    "created_at": utcnow(),
                }
                for (d, n), (c, t) in fresh.purchase_counts.items()
            ],
        )
    return True


def _same(a: Recomputed, b: Recomputed) -> bool:
    return a.figures == b.figures and a.purchase_counts == b.purchase_counts


async def persona_ids(session: AsyncSession, org_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(select(PERSONAS.c.id).where(PERSONAS.c.org_id == org_id).order_by(PERSONAS.c.id))
    return list(rows.scalars())
