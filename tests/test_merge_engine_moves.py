"""The merge engine: a merge moves everything of the merged persona to the survivor, losslessly,
whether staff ask for it or one contact matches two personas (even midway through a batch); the
preview says what a merge would do without doing it, and another organization's rows are untouched.

Personas, orders and points are made through the write paths the API uses
(ingestion, record_order, post_entry); engagement rows that have no resolver
yet are added as rows. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlmodel import col

from database import Database
from models import Consent, CustomAttribute, IdentityKey, Merge, Organization, Persona, PersonaTag
from models.enums import MergeKind
from resolvers import merges
from resolvers.ingest import ContactData, IngestOutcome
from tests.merge_engine_support import (
    ANN_EMAIL,
    ANN_PHONE,
    BEA_EMAIL,
    BEA_PHONE,
    assert_ledger_and_rollups_hold,
    consent,
    given_two_duplicates,
    ingest,
    merge,
    rows_of,
    snapshot,
)

BEA_EMAIL_KEY = ("email", BEA_EMAIL)


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
