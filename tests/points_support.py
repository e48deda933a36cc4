"""What the points-mutation tests (tests/test_points_mutations_*.py) share: the
adjustPoints, awardPoints, redeemDiscount, reverseRedemption and createDiscount
documents, the card's ledger query, the helpers that send them, and Ann, the loyalty
member whose points move.

``ann`` is a fixture; a test module registers it with ``ann = points_support.ann``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from database import Database
from models import Organization, PointsEntry
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, make_persona

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
