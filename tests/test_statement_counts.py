"""No N+1: the SQL statement count of the card does not depend on how much
history a persona has, and the Personas page does not grow with its size.

Each is counted twice: with coalescing off, every loader batch and history page is
its own statement (the reads, where an N+1 would show); with it on (the default), the
reads of one tick go to PostgreSQL as one statement (the round trips)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from sqlalchemy import event, insert, text

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


async def test_the_cards_statements_read_the_same_for_every_persona_and_are_planned_once(
    owner_client: GraphQLClient, db: Database, org: Organization, backend: str
) -> None:
    # Given personas with 2 and 7 orders (so the card's batches hold 2 and 7 keys)
    few = await make_persona(db, org, first_name="Few", phone="+14155550103")
    many = await make_persona(db, org, first_name="Many", phone="+14155550104")
    await _history(db, org, few.id, orders=2)
    await _history(db, org, many.id, orders=7)
    texts: dict[str, set[str]] = {}
    names: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        texts[current].add(statement)

    # When each card is read (after a first request: the key's last-used time is written once a minute)
    await owner_client.data(CARD, {"id": few.gid})
    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for current, persona in (("few", few), ("many", many)):
            texts[current] = set()
            names.append((await owner_client.data(CARD, {"id": persona.gid}))["persona"]["firstName"])
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert names == ["Few", "Many"]
    if backend != "postgresql":
        return  # SQLite: an IN list per batch (expanding); nothing is prepared there
    # Then on PostgreSQL both send the same statements, word for word: the keys of a batch are
    # one array parameter, not an IN list as long as the batch, so each text is prepared once
    assert texts["few"] == texts["many"]
    # And the connections plan a prepared statement once, not per execution
    async with db.read() as conn:
        assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one() == "force_generic_plan"
