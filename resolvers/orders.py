"""Orders from the point of sale: matched to a persona by the identity rules,
idempotent on (source, externalId), with accrual and rollups written in the
same transaction. Row by row here; recordOrders goes set-wise
(resolvers/orders_batch.py) and falls back to record_order for merges and races.

Each order runs in one savepoint with its customer's contact, so a rejected
order leaves no trace. Accrual (DESIGN, Points) goes to loyalty members that
are not archived: ORDER = floor(pre-tax subtotal x pointsPerDollar), VISIT =
pointsPerOrder, AUDIENCE_BOOST for the best multiplier among the persona's
audiences; a referred order gives the referrer REFERRAL_SALE points where the
organization's setting is on. One UPDATE folds the order and its points into
the persona's rollup (resolvers/orders_accrual.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Order, Organization, Persona, Store
from models.enums import PointsEntryKind
from models.tables import ORDER_LINES, ORDERS
from resolvers.amounts import decimal_to_cents
from resolvers.errors import UserError, UserErrors
from resolvers.ingest import ATTEMPTS, ConcurrentChange, ContactData, errors_of, resolve_contact, validate_contact
from resolvers.orders_accrual import accrual, accrues, count_purchases, fold_into_rollup
from resolvers.points import post_entry

# Largest amount an order field or unit price may carry: the cents fit a 32-bit column.
MAX_AMOUNT = Decimal("10000000")
MAX_QUANTITY = 100_000
TEXT_LENGTHS = {"externalId": 200, "source": 200}
LINE_LENGTHS = {"product": 300, "brand": 200, "category": 200}
# A chain of merges is short; the bound only guards against a corrupt cycle.
MAX_MERGE_HOPS = 20


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
    # Problems the caller found while reading the row (e.g. a malformed id): the row is REJECTED with them.
    input_errors: list[UserError] = field(default_factory=list)


@dataclass
class OrderResult:
    outcome: OrderOutcome
    order: Order | None = None
    persona: Persona | None = None
    errors: list[UserError] = field(default_factory=list)


def validate_order(data: OrderData, path: list[str]) -> list[UserError]:
    errors = list(data.input_errors)

    def invalid(message: str, *where: str) -> None:
        errors.append(UserError("INVALID", message, [*path, *where]))

    for name, limit in TEXT_LENGTHS.items():
        value = data.external_id if name == "externalId" else data.source
        if not value.strip() or len(value) > limit:
            invalid(f"{name} must be 1 to {limit} characters.", name)
    for name in ("subtotal", "tax", "total"):
        amount: Decimal = getattr(data, name)
        if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
            invalid(f"{name} must be an amount from 0 to {MAX_AMOUNT}.", name)
    if data.placed_at.tzinfo is None:
        invalid("placedAt needs a time zone.", "placedAt")
    for i, line in enumerate(data.lines):
        where = ("lines", str(i))
        if not 0 < line.quantity <= MAX_QUANTITY:
            invalid(f"quantity must be from 1 to {MAX_QUANTITY}.", *where, "quantity")
        if not line.unit_price.is_finite() or line.unit_price < 0 or line.unit_price > MAX_AMOUNT:
            invalid(f"unitPrice must be an amount from 0 to {MAX_AMOUNT}.", *where, "unitPrice")
        for name, limit in LINE_LENGTHS.items():
            text = getattr(line, name)
            if text is not None and len(text.strip()) > limit:
                invalid(f"{name} is longer than {limit} characters.", *where, name)
        if not line.product.strip():
            invalid("product may not be empty.", *where, "product")
    return errors


def line_rows(org_id: uuid.UUID, order_id: uuid.UUID, lines: Sequence[LineData]) -> list[dict[str, Any]]:
    """An order's lines as order_lines rows, in ticket order (names trimmed, money in cents)."""
    return [
        {
            "org_id": org_id,
            "order_id": order_id,
            "line_no": n,
            "product": line.product.strip(),
            "brand": (line.brand or "").strip() or None,
            "category": (line.category or "").strip() or None,
            "quantity": line.quantity,
            "unit_price_cents": decimal_to_cents(line.unit_price),
        }
        for n, line in enumerate(lines)
    ]


async def record_order(
    session: AsyncSession,
    org: Organization,
    data: OrderData,
    *,
    actor: str,
    path: list[str],
    number_block: int = 50,
    known: dict[tuple[str, str], Order] | None = None,
) -> OrderResult:
    """Record one order in its own savepoint; `known` holds orders already looked up, if any."""
    errors = validate_order(data, path)
    try:
        keys = validate_contact(org, data.customer, [*path, "customer"])
    except (UserError, UserErrors) as e:
        errors += errors_of(e)
    if errors:
        return OrderResult(OrderOutcome.REJECTED, errors=errors)
    ticket = (data.source, data.external_id)
    existing = known.get(ticket) if known is not None else await _existing_order(session, org.id, ticket)
    if existing is not None:
        return await _duplicate(session, org.id, existing)
    for attempt in range(ATTEMPTS):
        savepoint = await session.begin_nested()
        try:
            persona, _ = await resolve_contact(
                session,
                org,
                data.source,
                data.customer,
                keys,
                actor=actor,
                path=[*path, "customer"],
                number_block=number_block,
            )
            order = await _write_order(session, org, persona, data, actor, path)
        except (UserError, UserErrors) as e:
            await savepoint.rollback()
            return OrderResult(OrderOutcome.REJECTED, errors=errors_of(e))
        except (IntegrityError, ConcurrentChange):
            # A concurrent transaction recorded this ticket, or claimed or merged the customer, first.
            await savepoint.rollback()
            existing = await _existing_order(session, org.id, ticket)
            if existing is not None:
                return await _duplicate(session, org.id, existing)
            if attempt == ATTEMPTS - 1:
                raise
            continue
        await savepoint.commit()
        return OrderResult(OrderOutcome.RECORDED, order=order, persona=persona)
    raise AssertionError("unreachable")


async def _existing_order(session: AsyncSession, org_id: uuid.UUID, ticket: tuple[str, str]) -> Order | None:
    found = await _existing_orders(session, org_id, [ticket])
    return found.get(ticket)


async def _existing_orders(
    session: AsyncSession, org_id: uuid.UUID, tickets: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Order]:
    """Orders already recorded for these (source, externalId) pairs: one statement per 400."""
    wanted = list(dict.fromkeys(tickets))
    found: dict[tuple[str, str], Order] = {}
    for start in range(0, len(wanted), 400):
        chunk = wanted[start : start + 400]
        rows = await session.execute(
            select(Order).where(
                col(Order.org_id) == org_id, tuple_(col(Order.source), col(Order.external_id)).in_(chunk)
            )
        )
        found.update(((o.source, o.external_id), o) for o in rows.scalars())
    return found


async def _duplicate(session: AsyncSession, org_id: uuid.UUID, existing: Order) -> OrderResult:
    persona = await session.get(Persona, (org_id, existing.persona_id))
    return OrderResult(OrderOutcome.DUPLICATE, order=existing, persona=persona)


async def order_rows(session: AsyncSession, org_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The orders as rows (for payloads: one statement per 500)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[uuid.UUID, Any] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await session.execute(select(ORDERS).where(ORDERS.c.org_id == org_id, ORDERS.c.id.in_(chunk)))
        found.update((r.id, r) for r in rows)
    return found


async def _referrer(
    session: AsyncSession, org_id: uuid.UUID, number: int, customer: Persona, path: list[str]
) -> Persona:
    """The persona behind referredByNumber, followed to the survivor if it was merged away."""
    named = (
        await session.execute(select(Persona).where(col(Persona.org_id) == org_id, col(Persona.number) == number))
    ).scalar_one_or_none()
    referrer = await _survivor(session, org_id, named)
    if referrer is None or referrer.id == customer.id:
        raise UserError("NOT_FOUND", "No other persona has that number.", [*path, "referredByNumber"])
    return referrer


async def _survivor(session: AsyncSession, org_id: uuid.UUID, persona: Persona | None) -> Persona | None:
    """The persona itself, or the one it was merged into (a merge may have merged the survivor too)."""
    for _ in range(MAX_MERGE_HOPS):
        if persona is None or persona.merged_into_id is None:
            break
        persona = await session.get(Persona, (org_id, persona.merged_into_id))
    return persona


async def _write_order(
    session: AsyncSession, org: Organization, persona: Persona, data: OrderData, actor: str, path: list[str]
) -> Order:
    if data.store_id is not None and await session.get(Store, (org.id, data.store_id)) is None:
        raise UserError("NOT_FOUND", "No store with that id.", [*path, "storeId"])
    referrer = None
    if data.referred_by_number is not None:
        referrer = await _referrer(session, org.id, data.referred_by_number, persona, path)
        if persona.referred_by_id is None:
            persona.referred_by_id = referrer.id
    elif persona.referred_by_id is not None:
        # Referred before (a friend's /r/{token} link, or an earlier referred order): each order pays the friend.
        friend = await _survivor(session, org.id, await session.get(Persona, (org.id, persona.referred_by_id)))
        referrer = friend if friend is not None and friend.id != persona.id else None
    await session.flush()
    order = Order(
        org_id=org.id,
        persona_id=persona.id,
        source=data.source,
        external_id=data.external_id,
        store_id=data.store_id,
        placed_at=data.placed_at,
        subtotal_cents=decimal_to_cents(data.subtotal),
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
            line_rows(org.id, order.id, data.lines),
        )
    deltas = await accrual(session, org, persona, order) if accrues(persona) else []
    await fold_into_rollup(session, order, deltas, actor)
    await count_purchases(session, order, [(ln.product, ln.brand, ln.category) for ln in data.lines])
    if referrer is not None and org.referral_points_enabled and org.referral_points > 0 and accrues(referrer):
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
