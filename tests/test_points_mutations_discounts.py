"""Points mutations through GraphQL: createDiscount, redeemDiscount and
reverseRedemption, with their userErrors (the discount's name, cost and window,
insufficient points, another organization's discount or redemption), permissions and
the parallel-redemption guarantee."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from database import Database
from models import Organization, PointsEntry
from permissions.matrix import Role
from tests import points_support
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona
from tests.points_support import CREATE_DISCOUNT, REDEEM, REVERSE, award, codes, create_discount, ledger

ann = points_support.ann


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
