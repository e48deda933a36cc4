"""What the merge mutation tests share: the customers' contacts, the whole card, the mergePersonas
document and the userErrors it answers with, and the pair of duplicates they merge, made through
the API (orders through recordOrders, points through awardPoints)."""

from __future__ import annotations

from typing import Any

import pytest

from database import Database
from models import Organization
from resolvers.ingest import ConsentData
from tests.conftest import GraphQLClient
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
MERGES_OF = "query ($id: ID!) { persona(id: $id) { history { merges(first: 10) { nodes { id kind reason } } } } }"
MERGED_INTO = "query ($id: ID!) { persona(id: $id) { mergedInto { number } } }"
AWARD = """
mutation ($input: AwardPointsInput!) { awardPoints(input: $input) { userErrors { code } } }
"""
RECORD_ORDERS = """
mutation ($input: RecordOrdersInput!) { recordOrders(input: $input) { results { outcome userErrors { code } } } }
"""


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def errors_at(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


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
