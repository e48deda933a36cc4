"""The merge engine: a merge moves everything losslessly, and undo puts it back exactly.

Personas, orders and points are made through the write paths the API uses
(ingestion, record_order, post_entry); engagement rows that have no resolver
yet are added as rows. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import SQLModel, col

from database import Database
from models import (
    Consent,
    CustomAttribute,
    Discount,
    IdentityKey,
    Merge,
    Message,
    Order,
    OrderLine,
    Organization,
    Persona,
    PersonaAction,
    PersonaTag,
    PixelEvent,
    PointsEntry,
    Redemption,
    SignupSubmission,
    SurveySubmission,
)
from models.enums import MergeKind, PointsEntryKind
from resolvers import merges
from resolvers.errors import UserError
from resolvers.ingest import ConsentData, ContactData, IngestOutcome
from resolvers.ingest_batch import ingest_contacts
from resolvers.orders import LineData, OrderData, OrderOutcome, record_order
from resolvers.points import post_entry

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"
BEA_PHONE, BEA_EMAIL = "(646) 783-0134", "bea@example.com"
CAL_PHONE = "(212) 736-5001"
BEA_EMAIL_KEY = ("email", BEA_EMAIL)

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


def days_ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)


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


async def undo(db: Database, org: Organization, merge_id: uuid.UUID) -> Merge:
    async with db.session() as session, session.begin():
        found = await session.get(Merge, (org.id, merge_id))
        assert found is not None
        return await merges.undo_merge(session, org_id=org.id, merge=found, actor="manager")


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


async def test_merge_moves_everything_to_the_survivor(db: Database, org: Organization) -> None:
    # given
    dup = await given_two_duplicates(db, org)
    ann_points = await assert_ledger_and_rollups_hold(db, org, dup.ann)
    bea_points = await assert_ledger_and_rollups_hold(db, org, dup.bea)

    # when
    made = await merge(db, org, dup.ann, dup.bea)

    # then: every row of the merged persona belongs to the survivor now
    bea = await snapshot(db, org, dup.bea)
    assert {name: rows for name, rows in bea.items() if rows and name not in ("personas", "persona_rollups")} == {}
    assert bea["persona_rollups"][0]["points_balance"] == 0
    assert bea["personas"][0]["merged_into_id"] == dup.ann
    assert bea["personas"][0]["phone"] == "+16467830134"  # the tombstone keeps its own columns
    ann = await snapshot(db, org, dup.ann)
    assert len(ann["orders"]) == 3
    assert {(k["kind"], k["value"]) for k in ann["identity_keys"]} == {
        ("phone", "+14158675309"),
        ("email", ANN_EMAIL),
        ("phone", "+16467830134"),
        BEA_EMAIL_KEY,
    }
    for name in (
        "messages",
        "survey_submissions",
        "persona_actions",
        "pixel_events",
        "signup_submissions",
        "redemptions",
    ):
        assert len(ann[name]) == 1, name
    # the survivor's attribute wins a conflict; the loser's value is kept in the record
    assert {a["key"]: a["value"] for a in ann["custom_attributes"]} == {
        "tier": "gold",
        "shared": "from ann",
        "size": "L",
    }
    assert [(a["key"], a["value"]) for a in made.moved["attributes"]["kept"]] == [("shared", "from bea")]
    # tags: the union, and the record says which were added
    assert [t["tag"] for t in ann["persona_tags"]] == ["new", "shared", "vip"]
    assert [t["tag"] for t in made.moved["tags"]["added"]] == ["new"]
    # consents: the most restrictive wins per channel; the survivor's earlier ones are recorded
    assert {c["channel"]: (c["status"], c["source"]) for c in ann["consents"]} == {
        "TEXT": ("OPTED_OUT", "CUSTOMER"),
        "EMAIL": ("OPTED_OUT", "CUSTOMER"),
        "VOICE_DROP": ("OPTED_IN", "IMPORT"),
    }
    assert made.moved["consents"]["survivor_before"]["TEXT"]["status"] == "OPTED_IN"
    assert made.moved["consents"]["survivor_before"]["VOICE_DROP"] is None
    # traits fill only where the survivor had none; loyalty if either was a member
    person = ann["personas"][0]
    assert (person["first_name"], person["last_name"], person["birthday"]) == ("Ann", "Bee", dt.date(1990, 5, 1))
    assert person["loyalty_member"] is True
    assert person["sms_opt_out_at"] is not None
    assert set(made.moved["filled"]) == {"last_name", "birthday", "sms_opt_out_at"}
    # points and rollups: balance == ledger sum == both balances, rollups == recompute
    assert await assert_ledger_and_rollups_hold(db, org, dup.ann) == ann_points + bea_points
    rollup = ann["persona_rollups"][0]
    assert (rollup["orders_count"], rollup["items_count"]) == (3, 10)
    assert rollup["first_order_at"] == min(o["placed_at"] for o in ann["orders"])
    counts = {(c["dimension"], c["name"]): c["order_count"] for c in ann["purchase_counts"]}
    assert counts[("product", "Blue Dream")] == 2
    assert counts[("brand", "Wana")] == 2
    assert (made.kind, made.merged_number, made.actor) == ("MANUAL", dup.bea_number, "manager")
    assert sorted(made.moved["rows"]["orders"]) == sorted(
        o["id"].hex for o in ann["orders"] if o["external_id"] != "ann-order-1"
    )


async def test_merge_then_undo_restores_both_personas_exactly(db: Database, org: Organization) -> None:
    # given
    dup = await given_two_duplicates(db, org)
    before = (await snapshot(db, org, dup.ann), await snapshot(db, org, dup.bea))
    made = await merge(db, org, dup.ann, dup.bea)

    # when
    undone = await undo(db, org, made.id)

    # then
    assert undone.undone_at is not None
    after = (await snapshot(db, org, dup.ann), await snapshot(db, org, dup.bea))
    for was, now in zip(before, after, strict=True):
        for table in was:
            assert now[table] == was[table], table
    await assert_ledger_and_rollups_hold(db, org, dup.ann)
    await assert_ledger_and_rollups_hold(db, org, dup.bea)


async def test_undo_leaves_the_survivor_what_it_gained_since_the_merge(db: Database, org: Organization) -> None:
    # given a merge, then an order under the merged persona's phone and a new tag on the survivor
    dup = await given_two_duplicates(db, org)
    bea_before = await snapshot(db, org, dup.bea)
    made = await merge(db, org, dup.ann, dup.bea)
    later = await order(db, org, "after-merge", BEA_PHONE, days_ago(0), LineData("Pre-roll", 1, Decimal("12.00")))
    await ingest(db, org, ContactData(phone=ANN_PHONE, tags=["late"], attributes=[("size", "XL")]))

    # when
    await undo(db, org, made.id)

    # then the merged persona is as it was, and the survivor keeps its own gains
    bea_after = await snapshot(db, org, dup.bea)
    assert {t: rows for t, rows in bea_after.items() if t != "personas"} == {
        t: rows for t, rows in bea_before.items() if t != "personas"
    }
    ann = await snapshot(db, org, dup.ann)
    assert [o["external_id"] for o in sorted(ann["orders"], key=lambda o: o["external_id"])] == [
        "after-merge",
        "ann-order-1",
    ]
    assert later.persona_id == dup.ann
    assert {t["tag"] for t in ann["persona_tags"]} == {"late", "shared", "vip"}
    # the survivor changed "size" since the merge, so that value is its own
    assert {a["key"]: a["value"] for a in ann["custom_attributes"]}["size"] == "XL"
    await assert_ledger_and_rollups_hold(db, org, dup.ann)
    await assert_ledger_and_rollups_hold(db, org, dup.bea)


async def test_undo_is_refused_when_a_key_was_claimed_since(db: Database, org: Organization) -> None:
    # given a merge, after which the merged persona's email went to a third persona
    dup = await given_two_duplicates(db, org)
    (cal,) = await ingest(db, org, ContactData(phone=CAL_PHONE))
    made = await merge(db, org, dup.ann, dup.bea)
    async with db.session() as session, session.begin():
        await session.execute(
            update(IdentityKey)
            .where(col(IdentityKey.org_id) == org.id, col(IdentityKey.value) == BEA_EMAIL)
            .values(persona_id=cal.persona_id)
        )

    # when / then
    with pytest.raises(UserError) as refused:
        await undo(db, org, made.id)
    assert refused.value.code == "CANNOT_UNDO"
    assert f"#{cal.number}" in refused.value.message


async def test_undo_is_refused_when_the_survivor_spent_the_merged_points(db: Database, org: Organization) -> None:
    dup = await given_two_duplicates(db, org)
    made = await merge(db, org, dup.ann, dup.bea)
    balance = await assert_ledger_and_rollups_hold(db, org, dup.ann)
    await points(db, org, dup.ann, -balance)

    with pytest.raises(UserError) as refused:
        await undo(db, org, made.id)
    assert refused.value.code == "CANNOT_UNDO"


async def test_undo_is_refused_the_second_time(db: Database, org: Organization) -> None:
    dup = await given_two_duplicates(db, org)
    made = await merge(db, org, dup.ann, dup.bea)
    await undo(db, org, made.id)

    with pytest.raises(UserError) as refused:
        await undo(db, org, made.id)
    assert refused.value.code == "CANNOT_UNDO"
    assert "already undone" in refused.value.message


async def test_a_persona_cannot_be_merged_into_itself(db: Database, org: Organization) -> None:
    (ann,) = await ingest(db, org, ContactData(phone=ANN_PHONE))

    with pytest.raises(UserError) as refused:
        await merge(db, org, ann.persona_id, ann.persona_id)
    assert refused.value.code == "SAME_PERSONA"


async def test_a_merged_persona_cannot_merge_again(db: Database, org: Organization) -> None:
    ann, bea, cal = await ingest(
        db, org, ContactData(phone=ANN_PHONE), ContactData(phone=BEA_PHONE), ContactData(phone=CAL_PHONE)
    )
    await merge(db, org, ann.persona_id, bea.persona_id)

    for survivor, merged in ((cal.persona_id, bea.persona_id), (bea.persona_id, cal.persona_id)):
        with pytest.raises(UserError) as refused:
            await merge(db, org, survivor, merged)
        assert refused.value.code == "ALREADY_MERGED"


async def test_a_contact_matching_two_personas_merges_them_automatically(db: Database, org: Organization) -> None:
    # given one persona with the phone and a newer one with the email
    ann, bea = await ingest(db, org, ContactData(phone=ANN_PHONE), ContactData(email=BEA_EMAIL))

    # when
    (result,) = await ingest(db, org, ContactData(phone=ANN_PHONE, email=BEA_EMAIL, first_name="Ann"))

    # then the older survives, with both keys, and the merge is recorded with its reason
    assert result.outcome is IngestOutcome.MERGED
    assert result.persona_id == ann.persona_id
    async with db.session() as session:
        made = (await session.execute(select(Merge).where(col(Merge.org_id) == org.id))).scalar_one()
        keys = (await session.execute(select(IdentityKey).where(col(IdentityKey.org_id) == org.id))).scalars().all()
    assert (made.kind, made.survivor_id, made.merged_id) == (MergeKind.AUTOMATIC.value, ann.persona_id, bea.persona_id)
    assert made.reason is not None
    assert "email" in made.reason
    assert {k.persona_id for k in keys} == {ann.persona_id}
    await assert_ledger_and_rollups_hold(db, org, ann.persona_id)


async def test_preview_says_what_a_merge_would_do_without_doing_it(db: Database, org: Organization) -> None:
    dup = await given_two_duplicates(db, org)
    ann_points = await assert_ledger_and_rollups_hold(db, org, dup.ann)
    bea_points = await assert_ledger_and_rollups_hold(db, org, dup.bea)
    before = await snapshot(db, org, dup.bea)

    async with db.session() as session:
        ann = await session.get(Persona, (org.id, dup.ann))
        bea = await session.get(Persona, (org.id, dup.bea))
        assert ann is not None
        assert bea is not None
        preview = await merges.preview_merge(session, org_id=org.id, survivor=ann, merged=bea)
        itself = await merges.preview_merge(session, org_id=org.id, survivor=ann, merged=ann)

    assert (preview.resulting_points, preview.orders_moved) == (ann_points + bea_points, 2)
    assert preview.conflicting_attributes == ["shared"]
    assert preview.blockers == []
    assert [b.code for b in itself.blockers] == ["SAME_PERSONA"]
    assert (itself.resulting_points, itself.orders_moved) == (ann_points, 0)
    assert await snapshot(db, org, dup.bea) == before


async def test_attribute_rows_are_unaffected_in_other_organizations(
    db: Database, org: Organization, other_org: Organization
) -> None:
    # given the same customer in two organizations
    (theirs,) = await ingest(db, other_org, ContactData(phone=BEA_PHONE, attributes=[("size", "S")], tags=["x"]))
    dup = await given_two_duplicates(db, org)

    # when
    await merge(db, org, dup.ann, dup.bea)

    # then the other organization's persona keeps its rows
    assert [a.value for a in await rows_of(db, CustomAttribute, other_org, theirs.persona_id)] == ["S"]
    assert [t.tag for t in await rows_of(db, PersonaTag, other_org, theirs.persona_id)] == ["x"]
    assert len(await rows_of(db, Consent, other_org, theirs.persona_id)) == 0
    async with db.session() as session:
        persona = await session.get(Persona, (other_org.id, theirs.persona_id))
    assert persona is not None
    assert persona.merged_into_id is None


async def test_a_batch_that_merges_midway_keeps_working_on_the_moved_rows(db: Database, org: Organization) -> None:
    # given one batch: two personas, a contact that joins them, then one more row for the merged email
    ann_contact = ContactData(phone=ANN_PHONE, attributes=[("x", "1")], consents=[consent("TEXT", "OPTED_IN")])
    bea_contact = ContactData(
        email=BEA_EMAIL, attributes=[("x", "2"), ("y", "3")], consents=[consent("TEXT", "OPTED_OUT", "CUSTOMER")]
    )
    joining = ContactData(phone=ANN_PHONE, email=BEA_EMAIL, attributes=[("z", "4")])
    later = ContactData(email=BEA_EMAIL, attributes=[("y", "5")], tags=["late"])

    # when
    results = await ingest(db, org, ann_contact, bea_contact, joining, later)

    # then
    assert [r.outcome for r in results] == ["CREATED", "CREATED", "MERGED", "UPDATED"]
    ann = await snapshot(db, org, results[0].persona_id)
    assert {a["key"]: a["value"] for a in ann["custom_attributes"]} == {"x": "1", "y": "5", "z": "4"}
    assert {c["channel"]: c["status"] for c in ann["consents"]} == {"TEXT": "OPTED_OUT"}
    assert [t["tag"] for t in ann["persona_tags"]] == ["late"]
    await assert_ledger_and_rollups_hold(db, org, results[0].persona_id)


async def test_two_merges_of_one_persona_at_once_give_one_merge(db: Database, org: Organization) -> None:
    # given three personas, and two staff members folding the same one into different survivors
    ann, bea, cal = await ingest(
        db, org, ContactData(phone=ANN_PHONE), ContactData(phone=BEA_PHONE), ContactData(phone=CAL_PHONE)
    )

    # when both merges run at the same time
    outcomes = await asyncio.gather(
        merge(db, org, ann.persona_id, bea.persona_id),
        merge(db, org, cal.persona_id, bea.persona_id),
        return_exceptions=True,
    )

    # then one merged and the other was refused, with nothing half-done
    assert sorted(type(o).__name__ for o in outcomes) == ["Merge", "UserError"]
    refused = next(o for o in outcomes if isinstance(o, UserError))
    assert refused.code == "ALREADY_MERGED"
    async with db.session() as session:
        merged_rows = (await session.execute(select(Merge).where(col(Merge.org_id) == org.id))).scalars().all()
        keys = (await session.execute(select(IdentityKey).where(col(IdentityKey.org_id) == org.id))).scalars().all()
    assert len(merged_rows) == 1
    holders = {k.value: k.persona_id for k in keys}
    assert holders["+16467830134"] == merged_rows[0].survivor_id


async def test_personas_of_two_organizations_never_merge(
    db: Database, org: Organization, other_org: Organization
) -> None:
    (ours,) = await ingest(db, org, ContactData(phone=ANN_PHONE))
    (theirs,) = await ingest(db, other_org, ContactData(phone=BEA_PHONE))

    async with db.session() as session:
        survivor = await session.get(Persona, (org.id, ours.persona_id))
        merged = await session.get(Persona, (other_org.id, theirs.persona_id))
        assert survivor is not None
        assert merged is not None
        with pytest.raises(UserError) as refused:
            await merges.merge_personas(
                session, org_id=org.id, survivor=survivor, merged=merged, kind=MergeKind.MANUAL, reason=None, actor="x"
            )
    assert refused.value.code == "NOT_FOUND"
