"""No N+1: the SQL statement count of the card does not depend on how much
history a persona has, and the Personas page does not grow with its size.

Each is counted twice: with coalescing off, every loader batch and history page is
its own statement (the reads, where an N+1 would show); with it on (the default), the
reads of one tick go to PostgreSQL as one statement (the round trips)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from sqlalchemy import insert

from database import Database
from models import Order, OrderLine, Organization, PointsEntry, Store
from resolvers import rollups
from tests.conftest import GraphQLClient, StatementCounter
from tests.factories import make_persona

CARD = (Path(__file__).resolve().parent.parent / "operations" / "card.graphql").read_text()
PAGE = """
query ($first: Int) {
  personas(first: $first) {
    totalCount
    nodes { number fullName rewardPoints shoppingHabits { spendAllTime lastSeenDays } optIns { channel status } }
  }
}
"""


async def _history(db: Database, org: Organization, persona_id: uuid.UUID, orders: int) -> None:
    """Bulk history straight into the tables, then the rollups rebuilt from it."""
    now = dt.datetime.now(dt.UTC)
    async with db.session() as session, session.begin():
        store = Store(org_id=org.id, name=f"Store {persona_id.hex[-8:]}")
        session.add(store)
        await session.flush()
        order_rows, line_rows, entry_rows = [], [], []
        for n in range(orders):
            order = Order(
                org_id=org.id,
                persona_id=persona_id,
                source="bulk",
                external_id=f"{persona_id.hex}-{n}",
                store_id=store.id,
                placed_at=now - dt.timedelta(hours=n),
                subtotal_cents=1000 + n,
                tax_cents=150,
                total_cents=1150 + n,
                item_count=2,
                member_at_order=True,
            )
            order_rows.append(order.model_dump())
            for line_no, (product, brand) in enumerate(((f"Product {n % 7}", "Kiva"), (f"Product {n % 3}", "Wyld"))):
                line_rows.append(
                    OrderLine(
                        org_id=org.id,
                        order_id=order.id,
                        line_no=line_no,
                        product=product,
                        brand=brand,
                        category="Edibles",
                        quantity=1,
                        unit_price_cents=500,
                    ).model_dump()
                )
            entry_rows.append(
                PointsEntry(
                    org_id=org.id,
                    persona_id=persona_id,
                    kind="ORDER",
                    delta=10,
                    balance_after=10 * (orders - n),
                    order_id=order.id,
                    created_at=now - dt.timedelta(hours=n),
                ).model_dump()
            )
        await session.execute(insert(Order), order_rows)
        await session.execute(insert(OrderLine), line_rows)
        await session.execute(insert(PointsEntry), entry_rows)
        await rollups.rebuild(session, org.id, persona_id)


async def _count(
    client: GraphQLClient,
    statements: StatementCounter,
    query: str,
    variables: dict[str, object],
    *,
    db: Database,
    coalesce: bool,
) -> int:
    await client.data(query, variables)  # warm up: the key's last-used time is written once a minute
    before, db.coalesce_reads = db.coalesce_reads, coalesce
    statements.count = 0
    statements.active = True
    try:
        await client.data(query, variables)
    finally:
        statements.active = False
        db.coalesce_reads = before
    return statements.count


async def test_full_card_statement_count_does_not_depend_on_history(
    owner_client: GraphQLClient, db: Database, org: Organization, statements: StatementCounter, backend: str
) -> None:
    small = await make_persona(db, org, first_name="Small", phone="+14155550101")
    large = await make_persona(db, org, first_name="Large", phone="+14155550102")
    await _history(db, org, small.id, orders=1)
    await _history(db, org, large.id, orders=1000)

    counts = {}
    for coalesce in (False, True):
        few = await _count(owner_client, statements, CARD, {"id": small.gid}, db=db, coalesce=coalesce)
        many = await _count(owner_client, statements, CARD, {"id": large.gid}, db=db, coalesce=coalesce)
        assert few == many, f"coalesce={coalesce}: {few} statements for 1 order, {many} for 1000"
        counts[coalesce] = many

    assert counts[False] < 40, f"the full card took {counts[False]} reads"
    if backend == "postgresql":
        assert counts[True] <= 6, f"the full card took {counts[True]} round trips"


async def test_personas_page_statement_count_does_not_grow_with_page_size(
    owner_client: GraphQLClient, db: Database, org: Organization, statements: StatementCounter
) -> None:
    for n in range(100):
        await make_persona(db, org, first_name=f"P{n}", phone=f"+1415555{n:04d}")

    for coalesce in (False, True):
        ten = await _count(owner_client, statements, PAGE, {"first": 10}, db=db, coalesce=coalesce)
        hundred = await _count(owner_client, statements, PAGE, {"first": 100}, db=db, coalesce=coalesce)
        assert hundred <= ten, f"coalesce={coalesce}: {ten} statements for 10 personas, {hundred} for 100"
