"""What a recorded order adds to its persona, row by row (resolvers/orders.py):
the points it accrues (DESIGN, Points: ORDER, VISIT and AUDIENCE_BOOST for a
loyalty member that is not archived), one UPDATE folding the order and its
points into the persona's rollup with the ledger entries after it, and the
order counted once per product, brand and category it holds. The set-wise path
(resolvers/rollup_batch.py) writes the same figures for a whole batch."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, case, literal, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Order, Organization, Persona, PointsEntry
from models.base import UTCDateTime, utcnow
from models.enums import PointsEntryKind, PurchaseDimension
from models.tables import ENTRIES, PURCHASE_COUNTS, ROLLUPS
from resolvers import audiences
from resolvers.points import KIND_COLUMN, boost_points, order_points
from resolvers.upsert import insert_rows

NO_BOOST = audiences.NO_BOOST


def accrues(persona: Persona) -> bool:
    """Only enrolled loyalty members earn points, and never while archived, merged away or erased."""
    return (
        persona.loyalty_member
        and persona.archived_at is None
        and persona.merged_into_id is None
        and persona.erased_at is None
    )


async def best_multiplier(session: AsyncSession, org_id: uuid.UUID, persona: Persona) -> int:
    """The best pointsMultiplier (in thousandths; 1000 = no boost) among the audiences the persona is in.

    The organization's boosting audiences are read once per transaction; membership is
    asked of the audiences' saved searches (resolvers/audiences.py) only when one boosts.
    """
    boosting = await boosting_audiences(session, org_id)
    if not boosting:
        return NO_BOOST
    await session.flush()
    mine = (await audiences.memberships(session, org_id, [persona.id], boosting)).get(persona.id, [])
    return max((a.points_multiplier_milli for a in mine), default=NO_BOOST)


async def boosting_audiences(session: AsyncSession, org_id: uuid.UUID) -> list[Row[Any]]:
    transaction = session.get_transaction()
    cached = session.info.get(("boosting_audiences", org_id))
    if cached is not None and cached[0] is transaction:
        return list(cached[1])
    rows = [a for a in await audiences.list_audiences(session, org_id) if a.points_multiplier_milli > NO_BOOST]
    session.info[("boosting_audiences", org_id)] = (transaction, rows)
    return rows


async def accrual(
    session: AsyncSession, org: Organization, persona: Persona, order: Order
) -> list[tuple[PointsEntryKind, int]]:
    """ORDER, VISIT and AUDIENCE_BOOST points for one order of an accruing member (zeros left out)."""
    base = order_points(order.subtotal_cents, org.points_per_dollar_milli)
    boost = boost_points(base, await best_multiplier(session, org.id, persona)) if base > 0 else 0
    return [
        (kind, points)
        for kind, points in (
            (PointsEntryKind.ORDER, base),
            (PointsEntryKind.VISIT, org.points_per_order),
            (PointsEntryKind.AUDIENCE_BOOST, boost),
        )
        if points > 0
    ]


async def fold_into_rollup(
    session: AsyncSession, order: Order, deltas: list[tuple[PointsEntryKind, int]], actor: str | None
) -> None:
    """One UPDATE adds the order to the shopping figures and its points to the balance; then the entries."""
    r = ROLLUPS.c
    placed = literal(order.placed_at, UTCDateTime())
    total = sum(points for _, points in deltas)
    values: dict[str, Any] = {
        "orders_count": r.orders_count + 1,
        "items_count": r.items_count + order.item_count,
        "spend_total_cents": r.spend_total_cents + order.total_cents,
        "spend_subtotal_cents": r.spend_subtotal_cents + order.subtotal_cents,
        "spend_member_subtotal_cents": r.spend_member_subtotal_cents
        + (order.subtotal_cents if order.member_at_order else 0),
        "first_order_at": case(
            (or_(r.first_order_at.is_(None), r.first_order_at > placed), placed), else_=r.first_order_at
        ),
        "last_order_at": case(
            (or_(r.last_order_at.is_(None), r.last_order_at < placed), placed), else_=r.last_order_at
        ),
    }
    if deltas:
        values["points_balance"] = r.points_balance + total
        for kind, points in deltas:
            values[KIND_COLUMN[kind]] = r[KIND_COLUMN[kind]] + points
    balance = (
        await session.execute(
            update(ROLLUPS)
            .where(r.org_id == order.org_id, r.persona_id == order.persona_id)
            .values(**values)
            .returning(r.points_balance)
        )
    ).scalar_one()
    if not deltas:
        return
    running, now = balance - total, utcnow()  # after the rollup's lock: the ledger's order is the balances'
    entries = []
    for kind, points in deltas:
        running += points
        entries.append(
            PointsEntry(
                org_id=order.org_id,
                persona_id=order.persona_id,
                kind=kind.value,
                delta=points,
                balance_after=running,
                order_id=order.id,
                actor=actor,
                created_at=now,
            ).model_dump()
        )
    await insert_rows(session, ENTRIES, entries)


def dimension_names(lines: list[tuple[str, str | None, str | None]]) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {d.value: set() for d in PurchaseDimension}
    for product, brand, category in lines:
        names[PurchaseDimension.PRODUCT.value].add(product.strip())
        if brand and brand.strip():
            names[PurchaseDimension.BRAND.value].add(brand.strip())
        if category and category.strip():
            names[PurchaseDimension.CATEGORY.value].add(category.strip())
    return names


async def count_purchases(session: AsyncSession, order: Order, lines: list[tuple[str, str | None, str | None]]) -> None:
    """Count the order once per brand, category and product it holds: one upsert."""
    rows = [
        {
            "org_id": order.org_id,
            "persona_id": order.persona_id,
            "dimension": dimension,
            "name": name,
            "order_count": 1,
            "last_purchased_at": order.placed_at,
            "created_at": order.created_at,
        }
        for dimension, names in dimension_names(lines).items()
        for name in sorted(names)
    ]
    if not rows:
        return
    await session.execute(_purchase_count_upsert(session), rows)


def _purchase_count_upsert(session: AsyncSession) -> Any:
    """The upsert, executed with one parameter set per name: a statement compiled once and cached
    (a multi-row VALUES would be compiled afresh for every order)."""
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    upsert = sqlite_insert if dialect == "sqlite" else pg_insert
    pc = PURCHASE_COUNTS.c
    stmt = upsert(PURCHASE_COUNTS)
    latest = stmt.excluded.last_purchased_at
    return stmt.on_conflict_do_update(
        index_elements=[pc.org_id, pc.persona_id, pc.dimension, pc.name],
        set_={
            "order_count": pc.order_count + 1,
            "last_purchased_at": case((latest > pc.last_purchased_at, latest), else_=pc.last_purchased_at),
        },
    )
