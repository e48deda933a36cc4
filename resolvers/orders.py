"""Orders from the point of sale: matched to a persona by the identity rules,
idempotent on (source, externalId), with accrual and rollups written in the
same transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import case, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Order, OrderLine, Organization, Persona, PersonaRollup, PurchaseCount
from models.base import UTCDateTime
from models.enums import PointsEntryKind, PurchaseDimension
from resolvers.amounts import decimal_to_cents
from resolvers.errors import UserError, UserErrors
from resolvers.ingest import ContactData, IngestOutcome, ingest_one
from resolvers.points import boost_points, order_points, post_entries, post_entry

ROLLUPS = PersonaRollup.__table__  # type: ignore[attr-defined]
ORDERS = Order.__table__  # type: ignore[attr-defined]
ORDER_LINES = OrderLine.__table__  # type: ignore[attr-defined]
PURCHASE_COUNTS = PurchaseCount.__table__  # type: ignore[attr-defined]


class OrderOutcome(StrEnum):
    RECORDED = "RECORDED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"


@dataclass
class LineData:
    product: str
    quantity: int
    unit_price: Decimal
    brand: str | None = None
    category: str | None = None


@dataclass
class OrderData:
    external_id: str
    source: str
    customer: ContactData
    placed_at: dt.datetime
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    lines: list[LineData] = field(default_factory=list)
    store_id: uuid.UUID | None = None
    referred_by_number: int | None = None


@dataclass
class OrderResult:
    outcome: OrderOutcome
    order: Order | None = None
    persona: Persona | None = None
    errors: list[UserError] = field(default_factory=list)


def _validate(data: OrderData, path: list[str]) -> list[UserError]:
    errors = []
    if not data.external_id.strip():
        errors.append(UserError("INVALID", "externalId may not be empty.", [*path, "externalId"]))
    for name in ("subtotal", "tax", "total"):
        value: Decimal = getattr(data, name)
        if not value.is_finite() or value < 0:
            errors.append(UserError("INVALID", f"{name} must be a non-negative amount.", [*path, name]))
    if data.placed_at.tzinfo is None:
        errors.append(UserError("INVALID", "placedAt needs a time zone.", [*path, "placedAt"]))
    for i, line in enumerate(data.lines):
        if line.quantity <= 0:
            errors.append(UserError("INVALID", "quantity must be positive.", [*path, "lines", str(i), "quantity"]))
        if not line.product.strip():
            errors.append(UserError("INVALID", "product may not be empty.", [*path, "lines", str(i), "product"]))
        if not line.unit_price.is_finite() or line.unit_price < 0:
            errors.append(
                UserError("INVALID", "unitPrice must be non-negative.", [*path, "lines", str(i), "unitPrice"])
            )
    return errors


async def record_order(
    session: AsyncSession,
    org: Organization,
    data: OrderData,
    *,
    actor: str,
    path: list[str],
    number_block: int = 50,
    best_multiplier_milli: int = 1000,
) -> OrderResult:
    """Record one order in its own savepoint."""
    errors = _validate(data, path)
    if errors:
        return OrderResult(OrderOutcome.REJECTED, errors=errors)
    existing = (
        await session.execute(
            select(Order).where(
                col(Order.org_id) == org.id,
                col(Order.source) == data.source,
                col(Order.external_id) == data.external_id,
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        persona = await session.get(Persona, (org.id, existing.persona_id))
        return OrderResult(OrderOutcome.DUPLICATE, order=existing, persona=persona)

    contact = await ingest_one(
        session, org, data.source, data.customer, actor=actor, path=[*path, "customer"], number_block=number_block
    )
    if contact.outcome is IngestOutcome.REJECTED or contact.persona is None:
        return OrderResult(OrderOutcome.REJECTED, errors=contact.errors)
    savepoint = await session.begin_nested()
    try:
        order = await _write_order(session, org, contact.persona, data, actor, best_multiplier_milli, path)
    except (UserError, UserErrors) as e:
        await savepoint.rollback()
        return OrderResult(OrderOutcome.REJECTED, errors=e.errors if isinstance(e, UserErrors) else [e])
    await savepoint.commit()
    return OrderResult(OrderOutcome.RECORDED, order=order, persona=contact.persona)


async def _write_order(
    session: AsyncSession,
    org: Organization,
    persona: Persona,
    data: OrderData,
    actor: str,
    best_multiplier_milli: int,
    path: list[str],
) -> Order:
    referrer: Persona | None = None
    if data.referred_by_number is not None:
        referrer = (
            await session.execute(
                select(Persona).where(col(Persona.org_id) == org.id, col(Persona.number) == data.referred_by_number)
            )
        ).scalar_one_or_none()
        if referrer is None or referrer.id == persona.id:
            raise UserError("NOT_FOUND", "No other persona has that number.", [*path, "referredByNumber"])
    subtotal = decimal_to_cents(data.subtotal)
    active_member = persona.loyalty_member and persona.archived_at is None and persona.merged_into_id is None
    order = Order(
        org_id=org.id,
        persona_id=persona.id,
        source=data.source,
        external_id=data.external_id,
        store_id=data.store_id,
        placed_at=data.placed_at,
        subtotal_cents=subtotal,
        tax_cents=decimal_to_cents(data.tax),
        total_cents=decimal_to_cents(data.total),
        item_count=sum(line.quantity for line in data.lines),
        member_at_order=persona.loyalty_member,
        archived_at_order=persona.archived_at is not None,
        referred_by_id=referrer.id if referrer else None,
    )
    # Core inserts: orders and lines are write-once, and thousands of them kept
    # in the session's identity map would slow every later flush of a batch.
    await session.execute(insert(ORDERS).values(**order.model_dump()))
    if data.lines:
        await session.execute(
            insert(ORDER_LINES),
            [
                {
                    "org_id": org.id,
                    "order_id": order.id,
                    "line_no": n,
                    "product": line.product.strip(),
                    "brand": (line.brand or "").strip() or None,
                    "category": (line.category or "").strip() or None,
                    "quantity": line.quantity,
                    "unit_price_cents": decimal_to_cents(line.unit_price),
                }
                for n, line in enumerate(data.lines)
            ],
        )
    await add_order_to_rollups(session, order, [(ln.product, ln.brand, ln.category) for ln in data.lines])
    if active_member:
        await accrue(session, org, persona.id, order, best_multiplier_milli, actor)
    if referrer is not None and org.referral_points_enabled and org.referral_points > 0:
        await post_entry(
            session,
            org_id=org.id,
            persona_id=referrer.id,
            kind=PointsEntryKind.REFERRAL_SALE,
            delta=org.referral_points,
            note=f"referred persona #{persona.number}",
            order_id=order.id,
            actor=actor,
        )
    return order


async def accrue(
    session: AsyncSession,
    org: Organization,
    persona_id: uuid.UUID,
    order: Order,
    best_multiplier_milli: int,
    actor: str | None,
) -> int:
    """ORDER, VISIT and AUDIENCE_BOOST entries for one order; the points given."""
    base = order_points(order.subtotal_cents, org.points_per_dollar_milli)
    deltas = [
        (kind, points)
        for kind, points in (
            (PointsEntryKind.ORDER, base),
            (PointsEntryKind.VISIT, org.points_per_order),
            (PointsEntryKind.AUDIENCE_BOOST, boost_points(base, best_multiplier_milli)),
        )
        if points > 0
    ]
    if deltas:
        await post_entries(
            session,
            org_id=org.id,
            persona_id=persona_id,
            deltas=deltas,
            order_id=order.id,
            actor=actor,
            at=order.created_at,
        )
    return sum(points for _, points in deltas)


def _dimension_names(lines: list[tuple[str, str | None, str | None]]) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {d.value: set() for d in PurchaseDimension}
    for product, brand, category in lines:
        names[PurchaseDimension.PRODUCT.value].add(product.strip())
        if brand and brand.strip():
            names[PurchaseDimension.BRAND.value].add(brand.strip())
        if category and category.strip():
            names[PurchaseDimension.CATEGORY.value].add(category.strip())
    return names


async def add_order_to_rollups(
    session: AsyncSession, order: Order, lines: list[tuple[str, str | None, str | None]]
) -> None:
    """Fold one order into the persona's shopping rollup and purchase counts: two statements."""
    r = ROLLUPS.c
    placed = literal(order.placed_at, UTCDateTime())
    await session.execute(
        update(ROLLUPS)
        .where(r.org_id == order.org_id, r.persona_id == order.persona_id)
        .values(
            orders_count=r.orders_count + 1,
            items_count=r.items_count + order.item_count,
            spend_total_cents=r.spend_total_cents + order.total_cents,
            spend_subtotal_cents=r.spend_subtotal_cents + order.subtotal_cents,
            spend_member_subtotal_cents=r.spend_member_subtotal_cents
            + (order.subtotal_cents if order.member_at_order else 0),
            first_order_at=case(
                (or_(r.first_order_at.is_(None), r.first_order_at > placed), placed), else_=r.first_order_at
            ),
            last_order_at=case(
                (or_(r.last_order_at.is_(None), r.last_order_at < placed), placed), else_=r.last_order_at
            ),
        )
    )
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
        for dimension, names in _dimension_names(lines).items()
        for name in sorted(names)
    ]
    if not rows:
        return
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    pc = PURCHASE_COUNTS.c
    stmt = insert(PURCHASE_COUNTS).values(rows)
    latest = stmt.excluded.last_purchased_at
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[pc.org_id, pc.persona_id, pc.dimension, pc.name],
            set_={
                "order_count": pc.order_count + 1,
                "last_purchased_at": case((latest > pc.last_purchased_at, latest), else_=pc.last_purchased_at),
            },
        )
    )
