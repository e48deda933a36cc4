"""recordOrders set-wise: a batch of orders in a handful of statements.

Every order is validated first (with its customer); replays are found in one
statement. The customers are matched or made through the batch identity path
(resolvers/ingest_plan.py), in input order; each order's accrual is planned
against its persona as the rows before it left it (DESIGN, Points: ORDER,
VISIT, AUDIENCE_BOOST, REFERRAL_SALE, only for loyalty members that are not
archived). Then one savepoint writes the customers, the orders and their
lines, the rollups, the ledger entries and the purchase counts, each with one
multi-row statement, sent together (resolvers/upsert.py Writes: on PostgreSQL
one round trip, so a customer's rows that another batch waits for are held for
the statements' time, not the client's).

Audience boosts: the organization's boosting audiences are read once, and each
is evaluated once per segment for all its personas, after the customers'
contacts are written and before the orders are (the row-by-row path asks per
order, so an audience defined on orders or points may count the batch's
earlier orders there and not here).

What the plan does not take goes row by row (resolvers/orders.py): an order
whose customer needs a merge, and every order of a segment whose write hit a
unique key (a concurrent transaction recorded the ticket or claimed a key).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Organization
from models.base import new_id, one_of, utcnow
from models.enums import PointsEntryKind
from models.tables import ORDER_LINES, ORDERS, PERSONAS, STORES
from resolvers import audiences
from resolvers.amounts import decimal_to_cents
from resolvers.errors import UserError, UserErrors
from resolvers.ingest_batch import load_known, store_errors, write_contacts, write_legacy_imports
from resolvers.ingest_plan import BatchPlan, ContactRow
from resolvers.ingest_rules import errors_of, validate_contact
from resolvers.orders import MAX_MERGE_HOPS, OrderData, OrderOutcome, line_rows, record_order, validate_order
from resolvers.orders_accrual import NO_BOOST, boosting_audiences
from resolvers.points import boost_points, order_points
from resolvers.rollup_batch import Posting
from resolvers.turns import Turn, planning_turn
from resolvers.upsert import Writes

Ticket = tuple[str, str]


@dataclass
class OrderRowResult:
    outcome: OrderOutcome
    order_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    errors: list[UserError] = field(default_factory=list)
    # The order's and the persona's rows as the batch left them, when every row of the batch went
    # set-wise (as ingest_batch.RowResult.row): the payload reads nothing back.
    order_row: dict[str, Any] | None = None
    persona_row: dict[str, Any] | None = None


@dataclass
class OrderRow:
    index: int
    data: OrderData
    customer: ContactRow
    path: list[str]

    @property
    def ticket(self) -> Ticket:
        return (self.data.source, self.data.external_id)


@dataclass
class Planned:
    row: OrderRow
    order: dict[str, Any]
    base: int = 0
    boost: Posting | None = None
    referral: Posting | None = None


class Others:
    """Personas an order pays besides its customer (referrers), by number and by id."""

    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, dict[str, Any]] = {}
        self.by_number: dict[int, uuid.UUID] = {}

    async def load(self, session: AsyncSession, org_id: uuid.UUID, numbers: set[int], ids: set[uuid.UUID]) -> None:
        """The personas of these numbers and ids, and the survivors they were merged into."""
        p = PERSONAS.c
        found = or_(p.number.in_(sorted(numbers)), p.id.in_(sorted(ids)))
        for _ in range(MAX_MERGE_HOPS):
            if numbers or ids:
                for persona in (await session.execute(select(PERSONAS).where(p.org_id == org_id, found))).mappings():
                    self.by_id[persona["id"]] = dict(persona)
                    self.by_number[persona["number"]] = persona["id"]
            merged_into = {q["merged_into_id"] for q in self.by_id.values() if q["merged_into_id"]}
            ids, numbers = merged_into - self.by_id.keys(), set()
            if not ids:
                return
            found = p.id.in_(sorted(ids))

    def survivor(self, persona_id: uuid.UUID | None) -> uuid.UUID | None:
        for _ in range(MAX_MERGE_HOPS):
            persona = self.by_id.get(persona_id) if persona_id is not None else None
            if persona is None or persona["merged_into_id"] is None:
                break
            persona_id = persona["merged_into_id"]
        return persona_id


def accrues(persona: dict[str, Any]) -> bool:
    """Only enrolled loyalty members earn points, and never while archived, merged away or erased."""
    return bool(
        persona["loyalty_member"]
        and persona["archived_at"] is None
        and persona["merged_into_id"] is None
        and persona["erased_at"] is None
    )


async def record_orders(
    session: AsyncSession,
    org: Organization,
    data: Sequence[OrderData],
    *,
    actor: str,
    path: list[str],
    number_block: int = 50,
) -> list[OrderRowResult]:
    """One result per order, in input order; the caller owns the transaction."""
    async with planning_turn() as turn:
        results: list[OrderRowResult | None] = [None] * len(data)
        rows = []
        for i, order in enumerate(data):
            where = [*path, str(i)]
            errors = validate_order(order, where)
            customer_path = [*where, "customer"]
            try:
                keys = validate_contact(org, order.customer, customer_path)
            except (UserError, UserErrors) as e:
                errors += errors_of(e)
            if errors:
                results[i] = OrderRowResult(OrderOutcome.REJECTED, errors=errors)
                continue
            rows.append(OrderRow(i, order, ContactRow(i, order.source, order.customer, keys, customer_path), where))
        tickets = await _recorded(session, org.id, [row.ticket for row in rows])
        for row in rows:
            if row.ticket in tickets:
                order_id, persona_id = tickets[row.ticket]
                results[row.index] = OrderRowResult(OrderOutcome.DUPLICATE, order_id, persona_id)
        rows = [row for row in rows if results[row.index] is None]
        contact_errors = await store_errors(session, org.id, [row.customer for row in rows])
        order_stores = await _stores(session, org.id, {row.data.store_id for row in rows} - {None})
        for row, contact_error in zip(rows, contact_errors, strict=True):
            error = contact_error
            if error is None and row.data.store_id is not None and row.data.store_id not in order_stores:
                error = UserError("NOT_FOUND", "No store with that id.", [*row.path, "storeId"])
            if error is not None:
                results[row.index] = OrderRowResult(OrderOutcome.REJECTED, errors=[error])
        pending = [row for row in rows if results[row.index] is None]
        batch = OrdersBatch(session, org, actor, number_block, tickets, turn)
        while pending:
            done = await batch.segment(pending, results)
            pending = pending[done:]
    finished = [r for r in results if r is not None]
    assert len(finished) == len(results)
    if batch.by_row:
        for result in finished:
            result.order_row = result.persona_row = None
    return finished


async def _recorded(
    session: AsyncSession, org_id: uuid.UUID, tickets: Sequence[Ticket]
) -> dict[Ticket, tuple[uuid.UUID, uuid.UUID]]:
    """(order id, persona id) of the tickets recorded already, in one statement.

    Asked per source, `source = ? AND external_id IN (...)`: the unique index (org_id, source,
    external_id) serves that; a row-value IN list of (source, external_id) pairs is planned by
    PostgreSQL as a scan of the organization's orders."""
    by_source: dict[str, set[str]] = {}
    for source, external_id in tickets:
        by_source.setdefault(source, set()).add(external_id)
    if not by_source:
        return {}
    o = ORDERS.c
    rows = await session.execute(
        select(o.source, o.external_id, o.id, o.persona_id).where(
            o.org_id == org_id,
            or_(
                *(
                    and_(o.source == source, one_of(o.external_id, None, sorted(ids)))
                    for source, ids in by_source.items()
                )
            ),
        )
    )
    return {(source, external_id): (order_id, persona_id) for source, external_id, order_id, persona_id in rows}


async def _stores(session: AsyncSession, org_id: uuid.UUID, ids: set[uuid.UUID | None]) -> set[uuid.UUID]:
    if not ids:
        return set()
    stmt = select(STORES.c.id).where(STORES.c.org_id == org_id, STORES.c.id.in_(sorted(i for i in ids if i)))
    return set((await session.execute(stmt)).scalars())


class OrdersBatch:
    """The batch's segments: each planned in memory, then written in one savepoint."""

    def __init__(
        self,
        session: AsyncSession,
        org: Organization,
        actor: str,
        number_block: int,
        tickets: dict[Ticket, tuple[uuid.UUID, uuid.UUID]],
        turn: Turn | None = None,
    ) -> None:
        self.session, self.org, self.actor, self.number_block = session, org, actor, number_block
        self.tickets = tickets
        self.turn = turn
        self.boosting: list[Row[Any]] | None = None
        self.by_row = False  # whether any row went through the row-by-row path

    async def segment(self, pending: list[OrderRow], results: list[OrderRowResult | None]) -> int:
        """Plan and write the pending rows up to the first that cannot go set-wise; how many were done."""
        session, org = self.session, self.org
        plan = BatchPlan(org.id, await load_known(session, org.id, [row.customer for row in pending]), self.actor)
        others = Others()
        friends = {p["referred_by_id"] for p in plan.known.personas.values() if p["referred_by_id"]}
        friends |= {row.customer.contact.referred_by_id for row in pending if row.customer.contact.referred_by_id}
        numbers = {row.data.referred_by_number for row in pending if row.data.referred_by_number is not None}
        await others.load(session, org.id, numbers, friends)
        planned: list[Planned] = []
        touched: list[OrderRow] = []  # planned, or a replay of a planned ticket: redone if the write fails
        done = 0
        for row in pending:
            if row.ticket in self.tickets:
                order_id, persona_id = self.tickets[row.ticket]
                results[row.index] = OrderRowResult(OrderOutcome.DUPLICATE, order_id, persona_id)
                touched.append(row)
                done += 1
                continue
            owners = plan.owners(row.customer.keys)
            number = row.data.referred_by_number
            if len(owners) > 1 or (number is not None and number not in others.by_number and plan.new):
                break  # a merge, or a referrer this segment may have made: after what is planned so far
            referrer = others.survivor(others.by_number.get(number)) if number is not None else None
            if number is not None and (referrer is None or referrer in owners):
                error = UserError("NOT_FOUND", "No other persona has that number.", [*row.path, "referredByNumber"])
                results[row.index] = OrderRowResult(OrderOutcome.REJECTED, errors=[error])
                done += 1
                continue
            planned.append(self._plan(plan, others, row, referrer))
            touched.append(row)
            done += 1
        if done == 0:
            results[pending[0].index] = await self._row_by_row(pending[0])
            return 1
        if planned and not await self._write(plan, planned):
            for row in touched:
                results[row.index] = await self._row_by_row(row)
            return done
        for item in planned:
            order, persona_id = item.order, item.order["persona_id"]
            results[item.row.index] = OrderRowResult(
                OrderOutcome.RECORDED, order["id"], persona_id, order_row=order, persona_row=plan.persona(persona_id)
            )
        return done

    def _plan(self, plan: BatchPlan, others: Others, row: OrderRow, referrer: uuid.UUID | None) -> Planned:
        now = utcnow()
        persona_id, _ = plan.apply(row.customer, now)
        persona = plan.persona(persona_id)
        if referrer is not None:
            if persona["referred_by_id"] is None:
                plan.set(persona_id, {"referred_by_id": referrer})
        elif persona["referred_by_id"] is not None:
            # Referred before (a friend's link, or an earlier referred order): each order pays the friend.
            friend = others.survivor(persona["referred_by_id"])
            referrer = friend if friend is not None and friend != persona_id else None
        data = row.data
        order = {
            "org_id": self.org.id,
            "id": new_id(),
            "persona_id": persona_id,
            "source": data.source,
            "external_id": data.external_id,
            "store_id": data.store_id,
            "placed_at": data.placed_at,
            "subtotal_cents": decimal_to_cents(data.subtotal),
            "tax_cents": decimal_to_cents(data.tax),
            "total_cents": decimal_to_cents(data.total),
            "item_count": sum(line.quantity for line in data.lines),
            "member_at_order": persona["loyalty_member"],
            "archived_at_order": persona["archived_at"] is not None,
            "referred_by_id": referrer,
            "created_at": now,
        }
        self.tickets[row.ticket] = (order["id"], persona_id)
        planned = Planned(row, order)
        org, order_id = self.org, order["id"]
        if accrues(persona):
            planned.base = order_points(order["subtotal_cents"], org.points_per_dollar_milli)
            for kind, points in ((PointsEntryKind.ORDER, planned.base), (PointsEntryKind.VISIT, org.points_per_order)):
                if points > 0:
                    plan.rollups.post(persona_id, kind, points, now, actor=self.actor, order_id=order_id)
            if planned.base > 0:  # how many is known once the persona's audiences are (_write)
                boost = plan.rollups.post(persona_id, PointsEntryKind.AUDIENCE_BOOST, 0, now, actor=self.actor)
                boost.order_id, planned.boost = order_id, boost
        if referrer is not None and org.referral_points_enabled and org.referral_points > 0:
            paid = plan.persona(referrer) if referrer in plan.new or referrer in plan.known.personas else None
            paid = paid or others.by_id.get(referrer)
            if paid is not None and accrues(paid):
                planned.referral = plan.rollups.post(
                    referrer, PointsEntryKind.REFERRAL_SALE, org.referral_points, now, actor=self.actor
                )
                planned.referral.order_id = order_id
        return planned

    async def _write(self, plan: BatchPlan, planned: list[Planned]) -> bool:
        """The segment in one savepoint; False (nothing written) when a unique key was taken meanwhile."""
        org = self.org
        writes = Writes(self.session, self.turn)
        try:
            async with writes.savepoint():
                await write_contacts(writes, org, plan, self.number_block)
                boosted = {item.order["persona_id"] for item in planned if item.boost}
                multipliers = await self._multipliers(writes, boosted)
                lines = []
                for item in planned:
                    order = item.order
                    if item.boost is not None:
                        item.boost.delta = boost_points(item.base, multipliers.get(order["persona_id"], NO_BOOST))
                    if item.referral is not None:
                        item.referral.note = f"referred persona #{plan.persona(order['persona_id'])['number']}"
                    lines += line_rows(org.id, order["id"], item.row.data.lines)
                    plan.rollups.add_order(order)
                await writes.insert(ORDERS, [item.order for item in planned])
                await writes.insert(ORDER_LINES, lines)
                await plan.rollups.write(writes, org.id)
                await write_legacy_imports(writes, plan)
        except IntegrityError:
            for item in planned:
                self.tickets.pop(item.row.ticket, None)
            return False
        return True

    async def _multipliers(self, writes: Writes, persona_ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
        """The best multiplier of each persona: each boosting audience evaluated once for all of them
        (after the segment's contacts are written: an audience may be defined on them)."""
        if not persona_ids:
            return {}
        if self.boosting is None:
            self.boosting = await boosting_audiences(self.session, self.org.id)
        if not self.boosting:
            return {}
        await writes.flush()
        found = await audiences.memberships(self.session, self.org.id, sorted(persona_ids), self.boosting)
        return {p: max((a.points_multiplier_milli for a in mine), default=NO_BOOST) for p, mine in found.items()}

    async def _row_by_row(self, row: OrderRow) -> OrderRowResult:
        self.by_row = True
        result = await record_order(
            self.session, self.org, row.data, actor=self.actor, path=row.path, number_block=self.number_block
        )
        order_id = result.order.id if result.order is not None else None
        persona_id = result.persona.id if result.persona is not None else None
        if order_id is not None and persona_id is not None:
            self.tickets[row.ticket] = (order_id, persona_id)
        return OrderRowResult(result.outcome, order_id, persona_id, result.errors)
