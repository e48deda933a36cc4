"""Manual merges through GraphQL: mergePreview, mergePersonas and undoMerge,
their blockers and userErrors, and undo giving both cards back exactly."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from database import Database
from models import Merge, Organization, PointsEntry
from permissions.matrix import Role
from resolvers.audit import audit_log
from resolvers.ingest import ConsentData
from schema.ids import to_global_id
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona, days_ago, make_persona

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"
BEA_PHONE, BEA_EMAIL = "(646) 783-0134", "bea@example.com"
CAL_PHONE = "(212) 736-5001"

# The whole card, for "merge then undo gives it back exactly" (timestamps aside).
CARD = """
query ($id: ID!) {
  persona(id: $id) {
    id number firstName lastName fullName archivedAt loyaltyMember loyaltySignupAt
    email phone birthday mergedInto { number }
    rewardPoints
    optIns { channel status source updatedAt }
    shoppingHabits {
      spendAllTime salesCount averageOrder itemsPerOrder lastSeenDays shopsEveryDays
      preferredBrand { name count top { name count } }
      preferredProduct { name count top { name count } }
    }
    favorites { products { name count } categories { name count } brands { name count } }
    customAttributes { key value source updatedAt }
    tags
    traits { mobilePhone emailAddress birthday contactId importedFrom sourceId }
    logs { firstSeenAt loyaltyEnrolledAt smsOptOutAt }
    pointsOverview {
      spentAllTime spentAsMember points pointsRedeemed adjustedByStaff boostedByAudience giftedByCampaign
      giftedByFlow expired legacyImported visitPoints collectibles referralSales lastRedemptionAt lastRedemptionDiscount
    }
    history {
      points(first: 100) { totalCount nodes { id kind delta balanceAfter note actor createdAt } }
      orders(first: 100) { totalCount nodes { id externalId subtotal total itemCount pointsEarned } }
      redemptions(first: 100) { totalCount nodes { id discountName points status } }
    }
  }
}
"""
PREVIEW = """
query ($s: ID!, $m: ID!) {
  mergePreview(survivorId: $s, mergedId: $m) {
    survivor { number } merged { number }
    resultingPoints ordersMoved conflictingAttributes
    blockers { field message code }
  }
}
"""
MERGE = """
mutation ($input: MergePersonasInput!) {
  mergePersonas(input: $input) {
    persona {
      number rewardPoints phone email customAttributes { key value } tags
      history { orders(first: 10) { totalCount } }
    }
    merge { id kind mergedNumber reason actor mergedAt undoneAt survivor { number } }
    userErrors { field message code }
  }
}
"""
UNDO = """
mutation ($input: UndoMergeInput!) {
  undoMerge(input: $input) {
    persona { number rewardPoints }
    merge { id undoneAt }
    userErrors { field message code }
  }
}
"""
MERGES_OF = "query ($id: ID!) { persona(id: $id) { history { merges(first: 10) { nodes { id kind reason } } } } }"
MERGED_INTO = "query ($id: ID!) { persona(id: $id) { mergedInto { number } } }"
AWARD = """
mutation ($input: AwardPointsInput!) { awardPoints(input: $input) { userErrors { code } } }
"""
RECORD_ORDERS = """
mutation ($input: RecordOrdersInput!) { recordOrders(input: $input) { results { outcome userErrors { code } } } }
"""
INGEST = """
mutation ($input: IngestContactsInput!) {
  ingestContacts(input: $input) { results { outcome persona { number } userErrors { code } } }
}
"""
UPDATE_PERSONA = """
mutation ($input: UpdatePersonaInput!) { updatePersona(input: $input) { userErrors { code } } }
"""


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def errors_at(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def without_times(value: Any) -> Any:
    """The card with every timestamp left out (fields named *At)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if not k.endswith("At")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


async def card(client: GraphQLClient, persona: MadePersona) -> dict[str, Any]:
    data: dict[str, Any] = (await client.data(CARD, {"id": persona.gid}))["persona"]
    return data


async def award(client: GraphQLClient, persona: MadePersona, points: int) -> None:
    body = await client.data(
        AWARD, {"input": {"personaId": persona.gid, "kind": "CAMPAIGN_GIFT", "points": points, "note": "gift"}}
    )
    assert codes(body["awardPoints"]) == []


async def order(client: GraphQLClient, external_id: str, phone: str, days: float, *lines: tuple[str, int]) -> None:
    subtotal = sum(qty * 10 for _, qty in lines)
    body = await client.data(
        RECORD_ORDERS,
        {
            "input": {
                "orders": [
                    {
                        "externalId": external_id,
                        "source": "test-pos",
                        "customer": {"phone": phone},
                        "placedAt": days_ago(days).isoformat(),
                        "subtotal": f"{subtotal}.00",
                        "tax": "1.00",
                        "total": f"{subtotal + 1}.00",
                        "lines": [
                            {"product": p, "brand": "Kiva", "category": "Edibles", "quantity": q, "unitPrice": "10.00"}
                            for p, q in lines
                        ],
                    }
                ]
            }
        },
    )
    assert body["recordOrders"]["results"][0]["outcome"] == "RECORDED", body


@pytest.fixture
async def pair(db: Database, org: Organization, owner_client: GraphQLClient) -> tuple[MadePersona, MadePersona]:
    """Ann (the older) and Bea, each with orders, points, attributes, tags and consent."""
    ann = await make_persona(
        db,
        org,
        first_name="Ann",
        phone=ANN_PHONE,
        loyalty_member=True,
        attributes=[("tier", "gold"), ("store", "Mission")],
        tags=["vip"],
        consents=[ConsentData("TEXT", "OPTED_IN", "IMPORT")],
    )
    bea = await make_persona(
        db,
        org,
        first_name="Bea",
        last_name="Stone",
        email=BEA_EMAIL,
        phone=BEA_PHONE,
        loyalty_member=True,
        attributes=[("tier", "silver"), ("pet", "dog")],
        tags=["vip", "edibles"],
        consents=[ConsentData("TEXT", "OPTED_OUT", "IMPORT"), ConsentData("EMAIL", "OPTED_IN", "IMPORT")],
    )
    await order(owner_client, "a-1", ANN_PHONE, 20, ("Gummies", 2))
    await order(owner_client, "b-1", BEA_PHONE, 30, ("Gummies", 1), ("Mints", 3))
    await order(owner_client, "b-2", BEA_PHONE, 5, ("Mints", 1))
    await award(owner_client, ann, 15)
    await award(owner_client, bea, 40)
    return ann, bea


# mergePreview ------------------------------------------------------------------------


async def test_the_preview_says_what_a_merge_would_do_and_writes_nothing(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: tuple[MadePersona, MadePersona]
) -> None:
    ann, bea = pair
    before_ann, before_bea = await card(manager_client, ann), await card(manager_client, bea)
    preview = (await manager_client.data(PREVIEW, {"s": ann.gid, "m": bea.gid}))["mergePreview"]
    assert preview == {
        "survivor": {"number": ann.number},
        "merged": {"number": bea.number},
        "resultingPoints": before_ann["rewardPoints"] + before_bea["rewardPoints"],
        "ordersMoved": 2,
        "conflictingAttributes": ["tier"],
        "blockers": [],
    }
    assert await card(manager_client, ann) == before_ann
    assert await card(manager_client, bea) == before_bea
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Merge))).scalar_one() == 0


async def test_the_preview_lists_blockers(
    manager_client: GraphQLClient, pair: tuple[MadePersona, MadePersona], db: Database, org: Organization
) -> None:
    ann, bea = pair
    itself = (await manager_client.data(PREVIEW, {"s": ann.gid, "m": ann.gid}))["mergePreview"]
    assert errors_at({"userErrors": itself["blockers"]}) == [("SAME_PERSONA", ["mergedId"])]
    cal = await make_persona(db, org, phone=CAL_PHONE)
    merged = await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}})
    assert codes(merged["mergePersonas"]) == []
    again = (await manager_client.data(PREVIEW, {"s": cal.gid, "m": bea.gid}))["mergePreview"]
    assert errors_at({"userErrors": again["blockers"]}) == [("ALREADY_MERGED", ["mergedId"])]


async def test_the_preview_of_another_organizations_persona_is_not_found(
    client_for: ClientFactory, other_org: Organization, pair: tuple[MadePersona, MadePersona]
) -> None:
    ann, bea = pair
    rival = await client_for(Role.OWNER, other_org)
    body = await rival.execute(PREVIEW, {"s": ann.gid, "m": bea.gid})
    assert body["data"]["mergePreview"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


@pytest.mark.parametrize("malformed", ["s", "m"])
async def test_a_malformed_id_in_the_preview_is_bad_user_input_whichever_it_is(
    manager_client: GraphQLClient, malformed: str
) -> None:
    # Given one well-formed id of a persona that does not exist, and one malformed id
    unknown = to_global_id("Persona", uuid.uuid4())
    variables = {"s": unknown, "m": unknown, malformed: "%%%not-an-id"}
    # When the preview is asked for, then the malformed id is the error, not the unknown one
    body = await manager_client.execute(PREVIEW, variables)
    assert body["data"]["mergePreview"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert "Malformed ID" in body["errors"][0]["message"]


@pytest.mark.parametrize("role", [Role.STAFF, Role.ANALYST, Role.MARKETING, Role.OPERATOR])
async def test_the_preview_needs_merge_personas(
    client_for: ClientFactory, pair: tuple[MadePersona, MadePersona], role: Role
) -> None:
    ann, bea = pair
    body = await (await client_for(role)).execute(PREVIEW, {"s": ann.gid, "m": bea.gid})
    assert body["data"] == {"mergePreview": None}
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [("FORBIDDEN", ["mergePreview"])]


# mergePersonas -----------------------------------------------------------------------


async def test_a_manual_merge_moves_everything_and_leaves_a_tombstone(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: tuple[MadePersona, MadePersona]
) -> None:
    ann, bea = pair
    before_ann, before_bea = await card(manager_client, ann), await card(manager_client, bea)
    payload = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    assert payload["userErrors"] == []
    merge = payload["merge"]
    assert merge["kind"] == "MANUAL"
    assert merge["mergedNumber"] == bea.number
    assert merge["actor"] == f"test {Role.MANAGER}"
    assert merge["reason"] is None
    assert merge["undoneAt"] is None
    assert merge["survivor"] == {"number": ann.number}
    persona = payload["persona"]
    assert persona["number"] == ann.number
    assert persona["rewardPoints"] == before_ann["rewardPoints"] + before_bea["rewardPoints"]
    assert persona["history"]["orders"]["totalCount"] == 3
    # The survivor's value wins; the survivor fills what it lacked.
    assert {a["key"]: a["value"] for a in persona["customAttributes"]} == {
        "tier": "gold",
        "store": "Mission",
        "pet": "dog",
    }
    assert sorted(persona["tags"]) == ["edibles", "vip"]
    assert persona["email"] == BEA_EMAIL
    # The most restrictive consent wins per channel.
    after = await card(manager_client, ann)
    statuses = {o["channel"]: (o["status"], o["source"]) for o in after["optIns"]}
    assert statuses["TEXT"] == ("OPTED_OUT", "IMPORT")
    assert statuses["EMAIL"] == ("OPTED_IN", "IMPORT")
    assert after["logs"]["smsOptOutAt"] is not None

    tombstone = (await manager_client.data(MERGED_INTO, {"id": bea.gid}))["persona"]
    assert tombstone == {"mergedInto": {"number": ann.number}}
    listed = await manager_client.data("{ personas { nodes { number } } }")
    assert [n["number"] for n in listed["personas"]["nodes"]] == [ann.number]
    merges = (await manager_client.data(MERGES_OF, {"id": ann.gid}))["persona"]["history"]["merges"]["nodes"]
    assert [m["id"] for m in merges] == [merge["id"]]


async def test_a_persona_cannot_be_merged_into_itself(manager_client: GraphQLClient, pair: Any) -> None:
    ann, _ = pair
    payload = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": ann.gid}}))[
        "mergePersonas"
    ]
    assert errors_at(payload) == [("SAME_PERSONA", ["input", "mergedId"])]
    assert payload["merge"] is None


async def test_a_merged_persona_cannot_be_merged_again_either_way(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: Any
) -> None:
    ann, bea = pair
    cal = await make_persona(db, org, phone=CAL_PHONE)
    await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}})
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": cal.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    assert errors_at(merged) == [("ALREADY_MERGED", ["input", "mergedId"])]
    survivor = (await manager_client.data(MERGE, {"input": {"survivorId": bea.gid, "mergedId": cal.gid}}))[
        "mergePersonas"
    ]
    assert errors_at(survivor) == [("ALREADY_MERGED", ["input", "survivorId"])]


async def test_unknown_and_other_organizations_personas_are_not_found(
    client_for: ClientFactory, db: Database, org: Organization, other_org: Organization, pair: Any
) -> None:
    ann, bea = pair
    ours = await client_for(Role.OWNER)
    stranger = await make_persona(db, other_org, phone=CAL_PHONE)
    for survivor, merged, field in (
        (ann.gid, stranger.gid, "mergedId"),
        (stranger.gid, ann.gid, "survivorId"),
        (ann.gid, to_global_id("Persona", uuid.uuid4()), "mergedId"),
        (ann.gid, to_global_id("Order", bea.id), "mergedId"),
    ):
        payload = (await ours.data(MERGE, {"input": {"survivorId": survivor, "mergedId": merged}}))["mergePersonas"]
        assert errors_at(payload) == [("NOT_FOUND", ["input", field])]
    rival = await client_for(Role.OWNER, other_org)
    payload = (await rival.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))["mergePersonas"]
    assert errors_at(payload) == [("NOT_FOUND", ["input", "survivorId"])]
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Merge))).scalar_one() == 0


@pytest.mark.parametrize("role", [Role.STAFF, Role.OPERATOR, Role.MARKETING])
async def test_merging_needs_merge_personas(client_for: ClientFactory, db: Database, pair: Any, role: Role) -> None:
    ann, bea = pair
    client = await client_for(role)
    payload = (await client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))["mergePersonas"]
    assert codes(payload) == ["FORBIDDEN"]
    assert (await client.data(MERGED_INTO, {"id": bea.gid}))["persona"]["mergedInto"] is None


# undoMerge -------------------------------------------------------------------------------


async def test_merge_then_undo_gives_both_cards_back_exactly(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: Any
) -> None:
    ann, bea = pair
    before = [await card(manager_client, p) for p in (ann, bea)]
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]
    assert undone["userErrors"] == []
    assert undone["merge"]["undoneAt"] is not None
    assert undone["persona"] == {"number": ann.number, "rewardPoints": before[0]["rewardPoints"]}
    after = [await card(manager_client, p) for p in (ann, bea)]
    assert without_times(after) == without_times(before)
    # The ledger's own times come back too: the entries are the same rows.
    assert [p["history"]["points"] for p in after] == [p["history"]["points"] for p in before]
    async with db.session() as session:
        audit = await audit_log(session, org.id)
    assert [a.operation for a in audit][-2:] == ["mergePersonas", "undoMerge"]


async def test_the_survivor_keeps_what_it_gained_after_the_merge(
    manager_client: GraphQLClient, owner_client: GraphQLClient, pair: Any
) -> None:
    ann, bea = pair
    before_ann, before_bea = await card(manager_client, ann), await card(manager_client, bea)
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    await award(manager_client, ann, 100)
    await order(owner_client, "a-2", BEA_PHONE, 1, ("Mints", 1))  # Bea's phone now finds Ann
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]
    assert undone["userErrors"] == []
    after_ann, after_bea = await card(manager_client, ann), await card(manager_client, bea)
    assert after_bea["rewardPoints"] == before_bea["rewardPoints"]
    assert after_bea["history"]["orders"]["totalCount"] == 2
    assert after_ann["history"]["orders"]["totalCount"] == 2
    gained = after_ann["rewardPoints"] - before_ann["rewardPoints"]
    assert gained >= 100  # the award and the new order's accrual stayed with Ann


async def test_an_automatic_merge_can_be_undone_too(
    operator_client: GraphQLClient, manager_client: GraphQLClient, pair: Any
) -> None:
    ann, bea = pair
    before = [await card(manager_client, p) for p in (ann, bea)]
    body = await operator_client.data(
        INGEST, {"input": {"source": "test-pos", "contacts": [{"phone": ANN_PHONE, "email": BEA_EMAIL}]}}
    )
    assert body["ingestContacts"]["results"][0]["outcome"] == "MERGED"
    merges = (await manager_client.data(MERGES_OF, {"id": ann.gid}))["persona"]["history"]["merges"]["nodes"]
    assert [m["kind"] for m in merges] == ["AUTOMATIC"]
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merges[0]["id"]}}))["undoMerge"]
    assert undone["userErrors"] == []
    after = [await card(manager_client, p) for p in (ann, bea)]
    assert without_times(after[1]) == without_times(before[1])
    assert after[0]["rewardPoints"] == before[0]["rewardPoints"]


async def test_undo_is_cannot_undo_when_a_key_was_claimed_since(
    manager_client: GraphQLClient, operator_client: GraphQLClient, db: Database, org: Organization
) -> None:
    ann = await make_persona(db, org, email=ANN_EMAIL)
    bea = await make_persona(db, org, phone=BEA_PHONE)
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    assert merged["persona"]["phone"] == "+16467830134"
    # Ann gets her own number; Bea's old one is free, and a new customer takes it.
    changed = await manager_client.data(UPDATE_PERSONA, {"input": {"personaId": ann.gid, "phone": CAL_PHONE}})
    assert codes(changed["updatePersona"]) == []
    body = await operator_client.data(INGEST, {"input": {"source": "test-pos", "contacts": [{"phone": BEA_PHONE}]}})
    newcomer = body["ingestContacts"]["results"][0]
    assert newcomer["outcome"] == "CREATED"
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]
    assert errors_at(undone) == [("CANNOT_UNDO", ["input", "mergeId"])]
    assert f"#{newcomer['persona']['number']}" in undone["userErrors"][0]["message"]
    assert (await manager_client.data(MERGED_INTO, {"id": bea.gid}))["persona"]["mergedInto"] == {"number": ann.number}


async def test_undo_twice_is_cannot_undo(manager_client: GraphQLClient, pair: Any) -> None:
    ann, bea = pair
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    variables = {"input": {"mergeId": merged["merge"]["id"]}}
    assert codes((await manager_client.data(UNDO, variables))["undoMerge"]) == []
    again = (await manager_client.data(UNDO, variables))["undoMerge"]
    assert errors_at(again) == [("CANNOT_UNDO", ["input", "mergeId"])]
    assert "already undone" in again["userErrors"][0]["message"]


async def test_undo_is_cannot_undo_when_the_survivor_spent_the_merged_points(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: Any
) -> None:
    ann, bea = pair
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    points = merged["persona"]["rewardPoints"]
    spend = """mutation ($input: AdjustPointsInput!) { adjustPoints(input: $input) { userErrors { code } } }"""
    body = await manager_client.data(spend, {"input": {"personaId": ann.gid, "delta": -points, "note": "spent"}})
    assert codes(body["adjustPoints"]) == []
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]
    assert errors_at(undone) == [("CANNOT_UNDO", ["input", "mergeId"])]
    async with db.session() as session:
        total = (
            await session.execute(select(func.sum(col(PointsEntry.delta))).where(col(PointsEntry.org_id) == org.id))
        ).scalar_one()
    assert total == 0


async def test_undo_of_an_unknown_or_foreign_merge_is_not_found(
    client_for: ClientFactory, other_org: Organization, pair: Any
) -> None:
    ann, bea = pair
    ours = await client_for(Role.MANAGER)
    merged = (await ours.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))["mergePersonas"]
    rival = await client_for(Role.OWNER, other_org)
    for client, merge_id in (
        (rival, merged["merge"]["id"]),
        (ours, to_global_id("Merge", uuid.uuid4())),
        (ours, ann.gid),
    ):
        payload = (await client.data(UNDO, {"input": {"mergeId": merge_id}}))["undoMerge"]
        assert errors_at(payload) == [("NOT_FOUND", ["input", "mergeId"])]
    bad = (await ours.data(UNDO, {"input": {"mergeId": "%%%"}}))["undoMerge"]
    assert errors_at(bad) == [("INVALID", ["input", "mergeId"])]
    staff = await client_for(Role.STAFF)
    assert codes((await staff.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]) == ["FORBIDDEN"]
