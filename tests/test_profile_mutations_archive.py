"""Profile mutations through GraphQL: archivePersona and restorePersona. An
archived persona leaves the list but is found by id, and a restore credits what orders
placed while archived would have earned (audience boost included, members only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import col

from database import Database
from models import Organization
from tests import profile_support
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, days_ago
from tests.profile_support import ANN_PHONE, BEA_PHONE, errors_at, profile, send

PERSONAS = """
query ($all: Boolean) { personas(includeArchived: $all) { totalCount nodes { number } } }
"""
RECORD_ORDERS = """
mutation ($input: RecordOrdersInput!) {
  recordOrders(input: $input) { results { outcome persona { number rewardPoints } userErrors { code } } }
}
"""
ORDER_POINTS = """
query ($id: ID!) {
  persona(id: $id) {
    rewardPoints
    history { orders(first: 10) { nodes { externalId pointsEarned } } points(first: 10) { nodes { kind delta note } } }
  }
}
"""


async def record_order(client: GraphQLClient, external_id: str, phone: str, subtotal: int) -> dict[str, Any]:
    body = await client.data(
        RECORD_ORDERS,
        {
            "input": {
                "orders": [
                    {
                        "externalId": external_id,
                        "source": "test-pos",
                        "customer": {"phone": phone},
                        "placedAt": days_ago(1).isoformat(),
                        "subtotal": f"{subtotal}.00",
                        "tax": "0.00",
                        "total": f"{subtotal}.00",
                        "lines": [{"product": "Gummies", "quantity": 1, "unitPrice": f"{subtotal}.00"}],
                    }
                ]
            }
        },
    )
    result: dict[str, Any] = body["recordOrders"]["results"][0]
    assert result["outcome"] == "RECORDED", result
    return result


ann = profile_support.ann
bea = profile_support.bea


# archivePersona / restorePersona ------------------------------------------------------------


async def test_an_archived_persona_leaves_the_list_but_is_found_by_id(
    manager_client: GraphQLClient, ann: MadePersona, bea: MadePersona
) -> None:
    payload = await send(manager_client, "archivePersona", ann)
    assert payload["userErrors"] == []
    assert payload["persona"]["archivedAt"] is not None
    listed = (await manager_client.data(PERSONAS, {"all": False}))["personas"]
    assert [n["number"] for n in listed["nodes"]] == [bea.number]
    everyone = (await manager_client.data(PERSONAS, {"all": True}))["personas"]
    assert sorted(n["number"] for n in everyone["nodes"]) == sorted([ann.number, bea.number])
    assert (await profile(manager_client, ann))["archivedAt"] == payload["persona"]["archivedAt"]

    again = await send(manager_client, "archivePersona", ann)
    assert errors_at(again) == [("ARCHIVED", ["input", "personaId"])]

    restored = await send(manager_client, "restorePersona", ann)
    assert restored["userErrors"] == []
    assert restored["persona"]["archivedAt"] is None
    assert (await manager_client.data(PERSONAS, {"all": False}))["personas"]["totalCount"] == 2
    not_archived = await send(manager_client, "restorePersona", ann)
    assert errors_at(not_archived) == [("INVALID", ["input", "personaId"])]


async def test_restore_credits_what_orders_placed_while_archived_would_have_earned(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(Organization)
            .where(col(Organization.id) == org.id)
            .values(points_per_dollar_milli=1500, points_per_order=5)
        )
    await record_order(owner_client, "before", ANN_PHONE, 20)  # 30 + 5
    assert (await profile(owner_client, ann))["rewardPoints"] == 35
    await send(owner_client, "archivePersona", ann)
    while_archived = await record_order(owner_client, "during-1", ANN_PHONE, 41)  # floor(61.5) + 5 = 66
    await record_order(owner_client, "during-2", ANN_PHONE, 10)  # 15 + 5 = 20
    assert while_archived["persona"]["rewardPoints"] == 35

    restored = await send(owner_client, "restorePersona", ann)
    assert restored["persona"]["rewardPoints"] == 35 + 66 + 20
    card = (await owner_client.data(ORDER_POINTS, {"id": ann.gid}))["persona"]
    earned = {o["externalId"]: o["pointsEarned"] for o in card["history"]["orders"]["nodes"]}
    assert earned == {"before": 35, "during-1": 66, "during-2": 20}
    credits = [p for p in card["history"]["points"]["nodes"] if p["note"] and "restore" in p["note"]]
    assert sorted((p["kind"], p["delta"]) for p in credits) == [
        ("ORDER", 15),
        ("ORDER", 61),
        ("VISIT", 5),
        ("VISIT", 5),
    ]

    # A second archive and restore credits nothing twice.
    await send(owner_client, "archivePersona", ann)
    again = await send(owner_client, "restorePersona", ann)
    assert again["persona"]["rewardPoints"] == 121


SAVE_AUDIENCE = """
mutation ($input: SaveAudienceInput!) { saveAudience(input: $input) { userErrors { code } } }
"""


async def test_restore_credits_the_audience_boost_too(owner_client: GraphQLClient, ann: MadePersona) -> None:
    body = await owner_client.data(
        SAVE_AUDIENCE, {"input": {"name": "VIPs", "query": "tag:vip", "pointsMultiplier": "1.5"}}
    )
    assert body["saveAudience"]["userErrors"] == []
    await send(owner_client, "setTags", ann, add=["vip"])
    await send(owner_client, "archivePersona", ann)
    await record_order(owner_client, "during", ANN_PHONE, 40)  # ORDER 40, boost floor(40 x 0.5) = 20
    restored = await send(owner_client, "restorePersona", ann)
    assert restored["persona"]["rewardPoints"] == 60
    card = (await owner_client.data(ORDER_POINTS, {"id": ann.gid}))["persona"]
    assert sorted((p["kind"], p["delta"]) for p in card["history"]["points"]["nodes"]) == [
        ("AUDIENCE_BOOST", 20),
        ("ORDER", 40),
    ]


async def test_restore_credits_nothing_for_a_non_member(owner_client: GraphQLClient, bea: MadePersona) -> None:
    await send(owner_client, "archivePersona", bea)
    await record_order(owner_client, "b-1", BEA_PHONE, 50)
    restored = await send(owner_client, "restorePersona", bea)
    assert restored["persona"]["rewardPoints"] == 0


async def test_staff_may_not_archive(staff_client: GraphQLClient, ann: MadePersona) -> None:
    assert errors_at(await send(staff_client, "archivePersona", ann)) == [("FORBIDDEN", None)]
