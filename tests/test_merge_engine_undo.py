"""The merge engine: undo puts a merge back exactly, leaves the survivor what it gained since,
and is refused when it cannot (a key claimed since, the merged points spent, already undone).

Personas, orders and points are made through the write paths the API uses
(ingestion, record_order, post_entry); engagement rows that have no resolver
yet are added as rows. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import update
from sqlmodel import col

from database import Database
from models import IdentityKey, Merge, Organization
from resolvers import merges
from resolvers.errors import UserError
from resolvers.ingest import ContactData
from resolvers.orders import LineData
from tests.factories import days_ago
from tests.merge_engine_support import (
    ANN_PHONE,
    BEA_EMAIL,
    BEA_PHONE,
    CAL_PHONE,
    assert_ledger_and_rollups_hold,
    given_two_duplicates,
    ingest,
    merge,
    order,
    points,
    snapshot,
)


async def undo(db: Database, org: Organization, merge_id: uuid.UUID) -> Merge:
    async with db.session() as session, session.begin():
        found = await session.get(Merge, (org.id, merge_id))
        assert found is not None
        return await merges.undo_merge(session, org_id=org.id, merge=found, actor="manager")


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
