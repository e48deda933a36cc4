"""What the merge engine tests share: the customers' contacts, the write paths the API uses
(ingestion, record_order, post_entry), two duplicates of one customer with everything a persona can
hold (engagement rows that have no resolver yet are added as rows), a manual merge through
resolvers.merges, and the checks that a merge or undo lost nothing: a whole-persona snapshot, and
the ledger and rollups holding."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import SQLModel

from database import Database
from models import (
    Discount,
    Merge,
    Message,
    Order,
    OrderLine,
    Organization,
    Persona,
    PersonaAction,
    PixelEvent,
    PointsEntry,
    Redemption,
    SignupSubmission,
    SurveySubmission,
)
from models.enums import MergeKind, PointsEntryKind
from resolvers import merges
from resolvers.ingest import ConsentData, ContactData, IngestOutcome
from resolvers.ingest_batch import ingest_contacts
from resolvers.orders import LineData, OrderData, OrderOutcome, record_order
from resolvers.points import post_entry
from tests.factories import days_ago

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"
BEA_PHONE, BEA_EMAIL = "(646) 783-0134", "bea@example.com"
CAL_PHONE = "(212) 736-5001"

# Every table with a persona_id column, for a whole-persona snapshot; but the two kept by triggers
# from the others: history_counts, which counts their rows (held to them by
# tests/test_history_counts.py, merges and undos included; a merge, even undone, counts in both
# personas' merges), and persona_export_cells, the tags and consents as the export writes them
# (held to them by tests/test_export_cells.py; a merged persona keeps an empty row).
KEPT_BY_TRIGGERS = ("history_counts", "persona_export_cells")
PERSONA_TABLES = [t for t in SQLModel.metadata.sorted_tables if "persona_id" in t.c and t.name not in KEPT_BY_TRIGGERS]
PERSONAS = Persona.__table__  # type: ignore[attr-defined]
ORDER_LINES = OrderLine.__table__  # type: ignore[attr-defined]
ORDERS = Order.__table__  # type: ignore[attr-defined]


def consent(channel: str, status: str, source: str = "IMPORT") -> ConsentData:
    return ConsentData(channel=channel, status=status, source=source)


async def ingest(db: Database, org: Organization, *contacts: ContactData) -> list[Any]:
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        results = await ingest_contacts(session, loaded, "test-pos", contacts, actor="test", path=["contacts"])
    assert all(r.outcome is not IngestOutcome.REJECTED for r in results), [r.errors for r in results]
    return results


async def order(
    db: Database, org: Organization, external_id: str, phone: str, placed_at: dt.datetime, *lines: LineData
) -> Order:
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        data = OrderData(
            external_id=external_id,
            source="test-pos",
            customer=ContactData(phone=phone),
            placed_at=placed_at,
            subtotal=sum((line.unit_price * line.quantity for line in lines), Decimal(0)),
            tax=Decimal("1.50"),
            total=sum((line.unit_price * line.quantity for line in lines), Decimal("1.50")),
            lines=list(lines),
        )
        result = await record_order(session, loaded, data, actor="test", path=["order"])
    assert result.outcome is OrderOutcome.RECORDED, [e.message for e in result.errors]
    assert result.order is not None
    return result.order


async def points(db: Database, org: Organization, persona_id: uuid.UUID, delta: int, **kwargs: Any) -> None:
    async with db.session() as session, session.begin():
        await post_entry(
            session, org_id=org.id, persona_id=persona_id, kind=PointsEntryKind.STAFF_ADJUSTMENT, delta=delta, **kwargs
        )


@dataclass
class Duplicates:
    ann: uuid.UUID  # the older: the survivor
    bea: uuid.UUID
    bea_number: int


async def given_two_duplicates(db: Database, org: Organization) -> Duplicates:
    """Two personas of one customer, each with orders, points, consents, attributes, tags and history."""
    (ann,) = await ingest(
        db,
        org,
        ContactData(
            source_id="ann-1",
            phone=ANN_PHONE,
            email=ANN_EMAIL,
            first_name="Ann",
            attributes=[("tier", "gold"), ("shared", "from ann")],
            tags=["vip", "shared"],
            consents=[consent("TEXT", "OPTED_IN"), consent("EMAIL", "OPTED_OUT", "CUSTOMER")],
            legacy_points=30,
        ),
    )
    (bea,) = await ingest(
        db,
        org,
        ContactData(
            source_id="bea-1",
            phone=BEA_PHONE,
            email=BEA_EMAIL,
            first_name="Bea",
            last_name="Bee",
            birthday=dt.date(1990, 5, 1),
            loyalty_member=True,
            attributes=[("shared", "from bea"), ("size", "L")],
            tags=["shared", "new"],
            consents=[
                consent("TEXT", "OPTED_OUT", "CUSTOMER"),
                consent("EMAIL", "OPTED_IN"),
                consent("VOICE_DROP", "OPTED_IN"),
            ],
            legacy_points=50,
        ),
    )
    flower = LineData(product="Blue Dream", quantity=2, unit_price=Decimal("10.00"), brand="Acme", category="Flower")
    gummies = LineData(product="Gummies", quantity=3, unit_price=Decimal("5.00"), brand="Wana", category="Edible")
    await order(db, org, "ann-order-1", ANN_PHONE, days_ago(20), flower)
    await points(db, org, ann.persona_id, 5, note="welcome")
    await order(db, org, "bea-order-1", BEA_PHONE, days_ago(30), flower, gummies)
    await points(db, org, bea.persona_id, 7)
    await order(db, org, "bea-order-2", BEA_PHONE, days_ago(2), gummies)
    await given_engagement(db, org, bea.persona_id)
    return Duplicates(ann=ann.persona_id, bea=bea.persona_id, bea_number=bea.number)


async def given_engagement(db: Database, org: Organization, persona_id: uuid.UUID) -> None:
    """One row of each history kind that has no resolver yet, and a redemption."""
    now = days_ago(1)
    async with db.session() as session, session.begin():
        discount = Discount(org_id=org.id, name="$5 off", points_cost=20)
        session.add(discount)
        await session.flush()
        redemption = Redemption(
            org_id=org.id,
            persona_id=persona_id,
            discount_id=discount.id,
            discount_name="$5 off",
            points=20,
            status="REDEEMED",
        )
        session.add(redemption)
        await session.flush()
        await post_entry(
            session,
            org_id=org.id,
            persona_id=persona_id,
            kind=PointsEntryKind.REDEMPTION,
            delta=-20,
            redemption_id=redemption.id,
        )
        common: dict[str, Any] = {"org_id": org.id, "persona_id": persona_id, "source": "test"}
        session.add(Message(**common, external_id="m1", direction="OUTBOUND", channel="SMS", body="hi", sent_at=now))
        session.add(
            SurveySubmission(**common, external_id="s1", survey_name="NPS", status="COMPLETE", submitted_at=now)
        )
        session.add(PersonaAction(**common, external_id="a1", kind="OPENED", occurred_at=now))
        session.add(PixelEvent(**common, external_id="p1", site="shop", event="view", occurred_at=now))
        session.add(SignupSubmission(org_id=org.id, persona_id=persona_id, form_name="Join", url="https://x.test/join"))


async def merge(db: Database, org: Organization, survivor_id: uuid.UUID, merged_id: uuid.UUID) -> Merge:
    async with db.session() as session, session.begin():
        survivor = await session.get(Persona, (org.id, survivor_id))
        merged = await session.get(Persona, (org.id, merged_id))
        assert survivor is not None
        assert merged is not None
        return await merges.merge_personas(
            session,
            org_id=org.id,
            survivor=survivor,
            merged=merged,
            kind=MergeKind.MANUAL,
            reason=None,
            actor="manager",
        )


async def snapshot(db: Database, org: Organization, persona_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table that belongs to the persona (its own row without updated_at)."""
    taken: dict[str, list[dict[str, Any]]] = {}
    async with db.read() as conn:
        row = (
            await conn.execute(select(PERSONAS).where(PERSONAS.c.org_id == org.id, PERSONAS.c.id == persona_id))
        ).one()
        taken["personas"] = [{k: v for k, v in row._mapping.items() if k != "updated_at"}]
        for table in PERSONA_TABLES:
            rows = await conn.execute(
                select(table)
                .where(table.c.org_id == org.id, table.c.persona_id == persona_id)
                .order_by(*table.primary_key.columns)
            )
            taken[table.name] = [dict(r._mapping) for r in rows]
        lines = await conn.execute(
            select(ORDER_LINES)
            .join(ORDERS, (ORDERS.c.org_id == ORDER_LINES.c.org_id) & (ORDERS.c.id == ORDER_LINES.c.order_id))
            .where(ORDERS.c.org_id == org.id, ORDERS.c.persona_id == persona_id)
            .order_by(ORDER_LINES.c.order_id, ORDER_LINES.c.line_no)
        )
        taken["order_lines"] = [dict(r._mapping) for r in lines]
    return taken


async def rows_of(db: Database, model: type[SQLModel], org: Organization, persona_id: uuid.UUID) -> list[Any]:
    async with db.session() as session:
        table = model.__table__  # type: ignore[attr-defined]
        found = await session.execute(select(model).where(table.c.org_id == org.id, table.c.persona_id == persona_id))
        return list(found.scalars())


ROLLUP_TABLES = ("persona_rollups", "purchase_counts")


async def rollup_rows(conn: Any, org: Organization, persona_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    taken: dict[str, list[dict[str, Any]]] = {}
    for table in PERSONA_TABLES:
        if table.name in ROLLUP_TABLES:
            rows = await conn.execute(
                select(table)
                .where(table.c.org_id == org.id, table.c.persona_id == persona_id)
                .order_by(*table.primary_key.columns)
            )
            taken[table.name] = [dict(r._mapping) for r in rows]
    return taken


async def assert_ledger_and_rollups_hold(db: Database, org: Organization, persona_id: uuid.UUID) -> int:
    """The running balances add up, balance == sum of the ledger, and rollups == recompute."""
    entries = sorted(await rows_of(db, PointsEntry, org, persona_id), key=lambda e: (e.created_at, e.id))
    running = 0
    for entry in entries:
        running += entry.delta
        assert entry.balance_after == running
    stored = await snapshot(db, org, persona_id)
    assert stored["persona_rollups"][0]["points_balance"] == running
    async with db.session() as session:  # rolled back on close
        await merges.recompute_rollups(session, org.id, persona_id)
        recomputed = await rollup_rows(session, org, persona_id)
    assert recomputed == {name: stored[name] for name in ROLLUP_TABLES}
    return running
