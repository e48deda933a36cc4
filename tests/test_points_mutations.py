"""Points mutations through GraphQL: adjustPoints, awardPoints, redeemDiscount,
reverseRedemption and createDiscount, with their userErrors, idempotency keys,
audit entries and the parallel-redemption guarantee; and `expire-points`."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from database import Database
from models import IdempotencyRecord, Organization, PointsEntry
from models.enums import PointsEntryKind
from permissions.matrix import Role
from resolvers.audit import audit_log
from resolvers.points import post_entry
from schema.ids import to_global_id
from settings import Settings
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona, days_ago, make_persona

ROOT = Path(__file__).resolve().parent.parent

ENTRY_FIELDS = "id kind delta balanceAfter note actor createdAt"
ADJUST = f"""
mutation ($input: AdjustPointsInput!) {{
  adjustPoints(input: $input) {{
    persona {{ id rewardPoints pointsOverview {{ points adjustedByStaff }} }}
    entry {{ {ENTRY_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""
AWARD = f"""
mutation ($input: AwardPointsInput!) {{
  awardPoints(input: $input) {{
    persona {{ id rewardPoints pointsOverview {{ points giftedByCampaign legacyImported }} }}
    entry {{ {ENTRY_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""
REDEMPTION_FIELDS = "id discountName points status redeemedAt actor discount { id name }"
REDEEM = f"""
mutation ($input: RedeemDiscountInput!) {{
  redeemDiscount(input: $input) {{
    persona {{ id rewardPoints pointsOverview {{ points pointsRedeemed lastRedemptionDiscount }} }}
    redemption {{ {REDEMPTION_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""
REVERSE = f"""
mutation ($input: ReverseRedemptionInput!) {{
  reverseRedemption(input: $input) {{
    persona {{ id rewardPoints pointsOverview {{ points pointsRedeemed }} }}
    redemption {{ {REDEMPTION_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""
CREATE_DISCOUNT = """
mutation ($input: CreateDiscountInput!) {
  createDiscount(input: $input) {
    discount { id name pointsCost startsAt endsAt }
    userErrors { field message code }
  }
}
"""
LEDGER = """
query ($id: ID!) {
  persona(id: $id) {
    rewardPoints
    pointsOverview { points expired legacyImported boostedByAudience }
    history { points(first: 100) { totalCount nodes { kind delta balanceAfter note actor } } }
    discounts { discount { name } canRedeem }
  }
}
"""
MERGE = """
mutation ($input: MergePersonasInput!) {
  mergePersonas(input: $input) { merge { id } userErrors { code } }
}
"""
ARCHIVE = """
mutation ($input: PersonaRefInput!) { archivePersona(input: $input) { userErrors { code } } }
"""


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def ledger(client: GraphQLClient, persona: MadePersona) -> dict[str, Any]:
    data: dict[str, Any] = (await client.data(LEDGER, {"id": persona.gid}))["persona"]
    return data


async def award(client: GraphQLClient, persona: MadePersona, points: int, **extra: Any) -> dict[str, Any]:
    body = await client.data(
        AWARD, {"input": {"personaId": persona.gid, "kind": "CAMPAIGN_GIFT", "points": points, **extra}}
    )
    payload: dict[str, Any] = body["awardPoints"]
    return payload


async def create_discount(client: GraphQLClient, name: str, cost: int, **window: str) -> str:
    body = await client.data(CREATE_DISCOUNT, {"input": {"name": name, "pointsCost": cost, **window}})
    assert body["createDiscount"]["userErrors"] == []
    discount_id: str = body["createDiscount"]["discount"]["id"]
    return discount_id


async def entries_count(db: Database, org: Organization) -> int:
    async with db.session() as session:
        found = await session.execute(select(func.count()).where(col(PointsEntry.org_id) == org.id))
        return int(found.scalar_one())


@pytest.fixture
async def ann(db: Database, org: Organization) -> MadePersona:
    return await make_persona(db, org, first_name="Ann", phone="(415) 867-5309", loyalty_member=True)


# adjustPoints ---------------------------------------------------------------------


async def test_an_adjustment_writes_an_entry_with_the_actor_and_the_card_shows_it(
    manager_client: GraphQLClient, ann: MadePersona
) -> None:
    payload = (
        await manager_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 120, "note": "  lost receipt "}})
    )["adjustPoints"]
    assert payload["userErrors"] == []
    assert payload["entry"]["kind"] == "STAFF_ADJUSTMENT"
    assert payload["entry"]["delta"] == 120
    assert payload["entry"]["balanceAfter"] == 120
    assert payload["entry"]["note"] == "lost receipt"
    assert payload["entry"]["actor"] == f"test {Role.MANAGER}"
    assert payload["persona"]["rewardPoints"] == 120
    assert payload["persona"]["pointsOverview"] == {"points": 120, "adjustedByStaff": 120}

    taken = (await manager_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": -20, "note": "typo"}}))[
        "adjustPoints"
    ]
    assert taken["entry"]["balanceAfter"] == 100
    assert taken["persona"]["pointsOverview"] == {"points": 100, "adjustedByStaff": 100}


@pytest.mark.parametrize(
    ("delta", "note", "expected"),
    [
        (0, "why", [("INVALID", ["input", "delta"])]),
        (10, "   ", [("INVALID", ["input", "note"])]),
        (0, "", [("INVALID", ["input", "delta"]), ("INVALID", ["input", "note"])]),
    ],
)
async def test_an_adjustment_needs_a_note_and_a_nonzero_delta(
    manager_client: GraphQLClient,
    db: Database,
    org: Organization,
    ann: MadePersona,
    delta: int,
    note: str,
    expected: list[tuple[str, list[str]]],
) -> None:
    payload = (await manager_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": delta, "note": note}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == expected
    assert payload["persona"] is None
    assert payload["entry"] is None
    assert await entries_count(db, org) == 0


async def test_an_adjustment_below_zero_is_negative_balance_and_writes_nothing(
    manager_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    await award(manager_client, ann, 50)
    payload = (await manager_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": -51, "note": "oops"}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NEGATIVE_BALANCE", ["input", "delta"])]
    assert (await ledger(manager_client, ann))["rewardPoints"] == 50
    assert await entries_count(db, org) == 1


async def test_a_role_without_adjust_points_gets_forbidden_and_nothing_is_written(
    staff_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    payload = (await staff_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 5, "note": "hi"}}))[
        "adjustPoints"
    ]
    assert codes(payload) == ["FORBIDDEN"]
    assert await entries_count(db, org) == 0
    async with db.session() as session:
        audit = await audit_log(session, org.id)
    assert [(a.operation, a.outcome) for a in audit] == [("adjustPoints", "FORBIDDEN")]


async def test_another_organizations_persona_is_not_found(
    client_for: ClientFactory, db: Database, org: Organization, other_org: Organization, ann: MadePersona
) -> None:
    rival = await client_for(Role.OWNER, other_org)
    payload = (await rival.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 5, "note": "x"}}))["adjustPoints"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "personaId"])]
    assert await entries_count(db, org) == 0


@pytest.mark.parametrize(
    ("persona_id", "code"),
    [
        ("not-an-id", "INVALID"),
        (to_global_id("Discount", uuid.UUID(int=7)), "NOT_FOUND"),
        (to_global_id("Persona", uuid.UUID(int=7)), "NOT_FOUND"),
    ],
    ids=["malformed", "a-discount-id", "an-unknown-persona"],
)
async def test_a_bad_persona_id_is_a_user_error_at_its_path(
    owner_client: GraphQLClient, persona_id: str, code: str
) -> None:
    payload = (await owner_client.data(ADJUST, {"input": {"personaId": persona_id, "delta": 5, "note": "x"}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, ["input", "personaId"])]


async def test_points_of_an_archived_or_merged_persona_do_not_move(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    bea = await make_persona(db, org, first_name="Bea", email="bea@example.com", loyalty_member=True)
    merged = await owner_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}})
    assert codes(merged["mergePersonas"]) == []
    payload = (await owner_client.data(ADJUST, {"input": {"personaId": bea.gid, "delta": 5, "note": "x"}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("ALREADY_MERGED", ["input", "personaId"])]

    assert codes((await owner_client.data(ARCHIVE, {"input": {"personaId": ann.gid}}))["archivePersona"]) == []
    payload = (await owner_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 5, "note": "x"}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("ARCHIVED", ["input", "personaId"])]
    assert await entries_count(db, org) == 0


# Idempotency keys -------------------------------------------------------------------


async def test_an_adjustment_replayed_with_its_key_returns_the_first_result_and_writes_nothing(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    variables = {"input": {"personaId": ann.gid, "delta": 30, "note": "goodwill", "idempotencyKey": "k-1"}}
    first = (await owner_client.data(ADJUST, variables))["adjustPoints"]
    again = (await owner_client.data(ADJUST, variables))["adjustPoints"]
    assert first["userErrors"] == again["userErrors"] == []
    assert again["entry"] == first["entry"]
    assert again["persona"]["rewardPoints"] == 30
    assert await entries_count(db, org) == 1


async def test_the_same_key_with_other_arguments_is_idempotency_conflict(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    base = {"personaId": ann.gid, "delta": 30, "note": "goodwill", "idempotencyKey": "k-2"}
    await owner_client.data(ADJUST, {"input": base})
    for changed in ({"delta": 31}, {"note": "other"}):
        payload = (await owner_client.data(ADJUST, {"input": {**base, **changed}}))["adjustPoints"]
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])
        ]
    # The same key on another mutation is another request too.
    payload = await award(owner_client, ann, 30, idempotencyKey="k-2")
    assert codes(payload) == ["IDEMPOTENCY_CONFLICT"]
    assert await entries_count(db, org) == 1
    assert (await ledger(owner_client, ann))["rewardPoints"] == 30


async def test_a_refused_call_leaves_its_key_free_for_a_retry(owner_client: GraphQLClient, ann: MadePersona) -> None:
    variables = {"input": {"personaId": ann.gid, "delta": -10, "note": "fix", "idempotencyKey": "k-3"}}
    refused = (await owner_client.data(ADJUST, variables))["adjustPoints"]
    assert codes(refused) == ["NEGATIVE_BALANCE"]
    await award(owner_client, ann, 10)
    retried = (await owner_client.data(ADJUST, variables))["adjustPoints"]
    assert codes(retried) == []
    assert retried["persona"]["rewardPoints"] == 0


async def test_keys_belong_to_their_organization(
    client_for: ClientFactory, db: Database, org: Organization, other_org: Organization, ann: MadePersona
) -> None:
    rival_client = await client_for(Role.OWNER, other_org)
    rival = await make_persona(db, other_org, phone="(415) 867-5309")
    await award(rival_client, rival, 10, idempotencyKey="shared-key")
    ours = await award(await client_for(Role.OWNER), ann, 20, idempotencyKey="shared-key")
    assert codes(ours) == []
    assert ours["persona"]["rewardPoints"] == 20


async def test_award_and_redeem_replays_return_the_first_result(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    first = await award(owner_client, ann, 300, idempotencyKey="gift-1")
    again = await award(owner_client, ann, 300, idempotencyKey="gift-1")
    assert again["entry"] == first["entry"]
    discount = await create_discount(owner_client, "Free pre-roll", 100)
    variables = {"input": {"personaId": ann.gid, "discountId": discount, "idempotencyKey": "till-7"}}
    redeemed = (await owner_client.data(REDEEM, variables))["redeemDiscount"]
    replay = (await owner_client.data(REDEEM, variables))["redeemDiscount"]
    assert replay["redemption"] == redeemed["redemption"]
    assert replay["persona"]["rewardPoints"] == 200
    assert await entries_count(db, org) == 2
    other = await create_discount(owner_client, "Free lighter", 100)
    conflict = (await owner_client.data(REDEEM, {"input": {**variables["input"], "discountId": other}}))[
        "redeemDiscount"
    ]
    assert codes(conflict) == ["IDEMPOTENCY_CONFLICT"]
    async with db.session() as session:
        records = (await session.execute(select(IdempotencyRecord))).scalars().all()
    assert sorted(r.operation for r in records) == ["awardPoints", "redeemDiscount"]


async def test_a_blank_or_oversized_key_is_invalid(owner_client: GraphQLClient, ann: MadePersona) -> None:
    for key in ("  ", "k" * 201):
        payload = await award(owner_client, ann, 5, idempotencyKey=key)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "idempotencyKey"])]


async def test_concurrent_replays_of_one_key_write_once(
    client_for: ClientFactory, db: Database, org: Organization, ann: MadePersona
) -> None:
    clients = [await client_for(Role.OWNER) for _ in range(5)]
    variables = {"input": {"personaId": ann.gid, "kind": "CAMPAIGN_GIFT", "points": 40, "idempotencyKey": "race"}}
    bodies = await asyncio.gather(*(c.data(AWARD, variables) for c in clients))
    entries = {b["awardPoints"]["entry"]["id"] for b in bodies}
    assert len(entries) == 1
    assert all(codes(b["awardPoints"]) == [] for b in bodies)
    assert await entries_count(db, org) == 1


# awardPoints -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["CAMPAIGN_GIFT", "FLOW_GIFT", "COLLECTIBLE", "AUDIENCE_BOOST", "LEGACY_IMPORT"])
async def test_each_gift_kind_can_be_awarded(owner_client: GraphQLClient, ann: MadePersona, kind: str) -> None:
    body = await owner_client.data(AWARD, {"input": {"personaId": ann.gid, "kind": kind, "points": 25, "note": "hi"}})
    payload = body["awardPoints"]
    assert payload["userErrors"] == []
    assert payload["entry"]["kind"] == kind
    assert payload["persona"]["rewardPoints"] == 25


@pytest.mark.parametrize("kind", ["ORDER", "VISIT", "REFERRAL_SALE", "REDEMPTION", "STAFF_ADJUSTMENT", "EXPIRATION"])
async def test_other_kinds_cannot_be_awarded(owner_client: GraphQLClient, ann: MadePersona, kind: str) -> None:
    body = await owner_client.data(AWARD, {"input": {"personaId": ann.gid, "kind": kind, "points": 25}})
    assert [(e["code"], e["field"]) for e in body["awardPoints"]["userErrors"]] == [("INVALID", ["input", "kind"])]


@pytest.mark.parametrize("points", [0, -5])
async def test_an_award_is_positive(owner_client: GraphQLClient, ann: MadePersona, points: int) -> None:
    payload = await award(owner_client, ann, points)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "points"])]


async def test_marketing_may_award_but_not_adjust(client_for: ClientFactory, ann: MadePersona) -> None:
    marketing = await client_for(Role.MARKETING)
    assert codes(await award(marketing, ann, 10)) == []
    adjusted = (await marketing.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 5, "note": "x"}}))[
        "adjustPoints"
    ]
    assert codes(adjusted) == ["FORBIDDEN"]
    analyst = await client_for(Role.ANALYST)
    assert codes(await award(analyst, ann, 10)) == ["FORBIDDEN"]


# createDiscount ---------------------------------------------------------------------


async def test_a_discount_is_created_and_listed(manager_client: GraphQLClient) -> None:
    body = await manager_client.data(
        CREATE_DISCOUNT,
        {"input": {"name": " $5 off ", "pointsCost": 250, "startsAt": "2020-01-01T00:00:00+00:00"}},
    )
    discount = body["createDiscount"]["discount"]
    assert discount["name"] == "$5 off"
    assert discount["pointsCost"] == 250
    assert discount["startsAt"].startswith("2020-01-01T00:00:00")
    listed = await manager_client.data("{ discounts { id name } }")
    assert listed["discounts"] == [{"id": discount["id"], "name": "$5 off"}]


@pytest.mark.parametrize(
    ("input_", "field"),
    [
        ({"name": "  ", "pointsCost": 10}, ["input", "name"]),
        ({"name": "x" * 201, "pointsCost": 10}, ["input", "name"]),
        ({"name": "Free", "pointsCost": 0}, ["input", "pointsCost"]),
        ({"name": "Free", "pointsCost": -3}, ["input", "pointsCost"]),
        (
            {"name": "Free", "pointsCost": 10, "startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z"},
            ["input", "endsAt"],
        ),
        (
            {"name": "Free", "pointsCost": 10, "startsAt": "2030-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z"},
            ["input", "endsAt"],
        ),
    ],
)
async def test_a_discount_needs_a_name_a_positive_cost_and_an_ordered_window(
    owner_client: GraphQLClient, input_: dict[str, Any], field: list[str]
) -> None:
    body = await owner_client.data(CREATE_DISCOUNT, {"input": input_})
    assert body["createDiscount"]["discount"] is None
    assert [(e["code"], e["field"]) for e in body["createDiscount"]["userErrors"]] == [("INVALID", field)]
    assert (await owner_client.data("{ discounts(activeOnly: false) { id } }"))["discounts"] == []


async def test_staff_may_not_create_discounts(staff_client: GraphQLClient) -> None:
    body = await staff_client.data(CREATE_DISCOUNT, {"input": {"name": "Free", "pointsCost": 10}})
    assert codes(body["createDiscount"]) == ["FORBIDDEN"]


# redeemDiscount and reverseRedemption ---------------------------------------------------


async def test_a_redemption_spends_points_and_a_reversal_gives_them_back(
    owner_client: GraphQLClient, staff_client: GraphQLClient, ann: MadePersona
) -> None:
    await award(owner_client, ann, 300)
    discount = await create_discount(owner_client, "Free pre-roll", 120)
    redeemed = (await staff_client.data(REDEEM, {"input": {"personaId": ann.gid, "discountId": discount}}))[
        "redeemDiscount"
    ]
    assert redeemed["userErrors"] == []
    redemption = redeemed["redemption"]
    assert redemption["status"] == "REDEEMED"
    assert redemption["points"] == 120
    assert redemption["discountName"] == "Free pre-roll"
    assert redemption["discount"]["id"] == discount
    assert redemption["actor"] == f"test {Role.STAFF}"
    assert redeemed["persona"]["pointsOverview"] == {
        "points": 180,
        "pointsRedeemed": 120,
        "lastRedemptionDiscount": "Free pre-roll",
    }
    card = await ledger(owner_client, ann)
    assert card["history"]["points"]["nodes"][0] == {
        "kind": "REDEMPTION",
        "delta": -120,
        "balanceAfter": 180,
        "note": "Free pre-roll",
        "actor": f"test {Role.STAFF}",
    }

    reversed_ = (await staff_client.data(REVERSE, {"input": {"redemptionId": redemption["id"], "note": "refund"}}))[
        "reverseRedemption"
    ]
    assert reversed_["userErrors"] == []
    assert reversed_["redemption"]["status"] == "REVERSED"
    assert reversed_["persona"]["pointsOverview"] == {"points": 300, "pointsRedeemed": 0}
    card = await ledger(owner_client, ann)
    assert card["history"]["points"]["nodes"][0]["kind"] == "REDEMPTION"
    assert card["history"]["points"]["nodes"][0]["delta"] == 120
    assert card["history"]["points"]["nodes"][0]["balanceAfter"] == 300

    again = (await staff_client.data(REVERSE, {"input": {"redemptionId": redemption["id"]}}))["reverseRedemption"]
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("INVALID", ["input", "redemptionId"])]
    assert (await ledger(owner_client, ann))["rewardPoints"] == 300


async def test_redeeming_without_enough_points_is_insufficient_points(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    await award(owner_client, ann, 99)
    discount = await create_discount(owner_client, "Free pre-roll", 100)
    payload = (await owner_client.data(REDEEM, {"input": {"personaId": ann.gid, "discountId": discount}}))[
        "redeemDiscount"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INSUFFICIENT_POINTS", ["input", "discountId"])
    ]
    assert payload["redemption"] is None
    card = await ledger(owner_client, ann)
    assert card["rewardPoints"] == 99
    assert card["history"]["points"]["totalCount"] == 1


@pytest.mark.parametrize(
    "window",
    [
        {"startsAt": "2099-01-01T00:00:00Z"},
        {"startsAt": "2000-01-01T00:00:00Z", "endsAt": "2001-01-01T00:00:00Z"},
    ],
)
async def test_a_discount_outside_its_window_is_not_active(
    owner_client: GraphQLClient, ann: MadePersona, window: dict[str, str]
) -> None:
    await award(owner_client, ann, 500)
    discount = await create_discount(owner_client, "Holiday", 100, **window)
    payload = (await owner_client.data(REDEEM, {"input": {"personaId": ann.gid, "discountId": discount}}))[
        "redeemDiscount"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("DISCOUNT_NOT_ACTIVE", ["input", "discountId"])
    ]
    assert (await ledger(owner_client, ann))["rewardPoints"] == 500


async def test_another_organizations_discount_and_redemption_are_not_found(
    client_for: ClientFactory, org: Organization, other_org: Organization, ann: MadePersona
) -> None:
    ours = await client_for(Role.OWNER)
    rival = await client_for(Role.OWNER, other_org)
    await award(ours, ann, 500)
    theirs = await create_discount(rival, "Rival deal", 10)
    payload = (await ours.data(REDEEM, {"input": {"personaId": ann.gid, "discountId": theirs}}))["redeemDiscount"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "discountId"])]

    mine = await create_discount(ours, "Ours", 10)
    redemption = (await ours.data(REDEEM, {"input": {"personaId": ann.gid, "discountId": mine}}))["redeemDiscount"][
        "redemption"
    ]
    reversed_ = (await rival.data(REVERSE, {"input": {"redemptionId": redemption["id"]}}))["reverseRedemption"]
    assert [(e["code"], e["field"]) for e in reversed_["userErrors"]] == [("NOT_FOUND", ["input", "redemptionId"])]
    assert (await ledger(ours, ann))["rewardPoints"] == 490


async def test_ten_parallel_redemptions_against_three_covers_succeed_exactly_three_times(
    client_for: ClientFactory, db: Database, org: Organization, ann: MadePersona
) -> None:
    owner = await client_for(Role.OWNER)
    await award(owner, ann, 300)
    discount = await create_discount(owner, "Free pre-roll", 100)
    tills = [await client_for(Role.STAFF) for _ in range(10)]
    variables = {"input": {"personaId": ann.gid, "discountId": discount}}
    bodies = await asyncio.gather(*(till.data(REDEEM, variables) for till in tills))
    outcomes = sorted(tuple(codes(b["redeemDiscount"])) for b in bodies)
    assert outcomes == [()] * 3 + [("INSUFFICIENT_POINTS",)] * 7
    card = await ledger(owner, ann)
    assert card["rewardPoints"] == 0
    assert card["pointsOverview"]["points"] == 0
    balances = [n["balanceAfter"] for n in card["history"]["points"]["nodes"]]
    assert sorted(balances) == [0, 100, 200, 300]
    async with db.session() as session:
        total = (
            await session.execute(select(func.sum(col(PointsEntry.delta))).where(col(PointsEntry.org_id) == org.id))
        ).scalar_one()
    assert total == 0


# Every mutation is audited ----------------------------------------------------------------


async def test_each_points_mutation_writes_one_audit_entry(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    since = dt.datetime.now(dt.UTC)
    await award(owner_client, ann, 200)
    await owner_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 0, "note": "x"}})
    discount = await create_discount(owner_client, "Deal", 100)
    redeemed = await owner_client.data(REDEEM, {"input": {"personaId": ann.gid, "discountId": discount}})
    await owner_client.data(REVERSE, {"input": {"redemptionId": redeemed["redeemDiscount"]["redemption"]["id"]}})
    async with db.session() as session:
        audit = await audit_log(session, org.id, since)
    assert [(a.operation, a.outcome) for a in audit] == [
        ("awardPoints", "OK"),
        ("adjustPoints", "REFUSED"),
        ("createDiscount", "OK"),
        ("redeemDiscount", "OK"),
        ("reverseRedemption", "OK"),
    ]
    assert all(a.actor == f"test {Role.OWNER}" for a in audit)
    assert ann.gid in audit[0].target_ids


# expire-points ---------------------------------------------------------------------------


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    return subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


async def post(
    db: Database, org: Organization, persona: MadePersona, kind: PointsEntryKind, delta: int, days: float
) -> None:
    """A ledger entry made `days` ago, through the ledger's own write path."""
    async with db.session() as session, session.begin():
        await post_entry(session, org_id=org.id, persona_id=persona.id, kind=kind, delta=delta, at=days_ago(days))


async def set_expiry(db: Database, org: Organization, days: int | None) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(Organization).where(col(Organization.id) == org.id).values(points_expire_after_days=days)
        )


async def test_expire_points_expires_earned_points_first_in_first_out(
    owner_client: GraphQLClient, db: Database, org: Organization, settings: Settings, ann: MadePersona
) -> None:
    # Given a 90-day expiry and this ledger (days ago):
    #   200  ORDER           100 d   expiring lot A
    #    50  LEGACY_IMPORT    95 d   never expires
    #  -150  REDEMPTION       94 d   spends the oldest first: 150 of A (A has 50 left)
    #    30  AUDIENCE_BOOST   93 d   never expires
    #    40  CAMPAIGN_GIFT    92 d   expiring lot B
    #  -60   REDEMPTION       91 d   50 (rest of A) + 10 of the legacy lot (legacy has 40 left)
    #    70  VISIT            10 d   expiring lot C, too young
    # Due: B = 40 (A is spent, C is young, legacy and boost never expire): 180 - 40 = 140 left.
    await set_expiry(db, org, 90)
    for kind, delta, days in (
        (PointsEntryKind.ORDER, 200, 100),
        (PointsEntryKind.LEGACY_IMPORT, 50, 95),
        (PointsEntryKind.REDEMPTION, -150, 94),
        (PointsEntryKind.AUDIENCE_BOOST, 30, 93),
        (PointsEntryKind.CAMPAIGN_GIFT, 40, 92),
        (PointsEntryKind.REDEMPTION, -60, 91),
        (PointsEntryKind.VISIT, 70, 10),
    ):
        await post(db, org, ann, kind, delta, days)
    assert (await ledger(owner_client, ann))["rewardPoints"] == 180

    first = run_cli(settings, "expire-points", "--org", "acme")
    assert first.returncode == 0, first.stderr
    assert "acme: expired 40 points of 1 personas" in first.stdout
    card = await ledger(owner_client, ann)
    assert card["rewardPoints"] == 140
    assert card["pointsOverview"]["expired"] == 40
    newest = card["history"]["points"]["nodes"][0]
    assert (newest["kind"], newest["delta"], newest["balanceAfter"]) == ("EXPIRATION", -40, 140)

    second = run_cli(settings, "expire-points")
    assert second.returncode == 0, second.stderr
    assert "acme: expired 0 points of 0 personas" in second.stdout
    again = await ledger(owner_client, ann)
    assert again["rewardPoints"] == 140
    assert again["history"]["points"]["totalCount"] == 8


async def test_expire_points_leaves_never_expiring_kinds_and_skips_orgs_without_expiry(
    owner_client: GraphQLClient, db: Database, org: Organization, settings: Settings, ann: MadePersona
) -> None:
    await post(db, org, ann, PointsEntryKind.LEGACY_IMPORT, 80, 400)
    await post(db, org, ann, PointsEntryKind.AUDIENCE_BOOST, 20, 400)
    await post(db, org, ann, PointsEntryKind.ORDER, 10, 400)
    off = run_cli(settings, "expire-points", "--org", "acme")
    assert off.returncode == 0, off.stderr
    assert "never expire" in off.stdout
    assert (await ledger(owner_client, ann))["rewardPoints"] == 110

    await set_expiry(db, org, 30)
    done = run_cli(settings, "expire-points", "--org", "acme")
    assert "acme: expired 10 points of 1 personas" in done.stdout
    card = await ledger(owner_client, ann)
    assert card["rewardPoints"] == 100
    assert card["pointsOverview"]["legacyImported"] == 80
    assert card["pointsOverview"]["boostedByAudience"] == 20


async def test_expire_points_names_an_unknown_org_in_one_line(settings: Settings, db: Database) -> None:
    result = run_cli(settings, "expire-points", "--org", "nope")
    assert result.returncode == 2
    assert result.stderr.strip() == "personagraph: error: no organization with slug 'nope'"
