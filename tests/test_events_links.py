"""The wallet and referral links over HTTP (the wallet page, invalid links, the
referral redirect to sign-up), and the referral flow into accrual."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import update
from sqlmodel import col

from database import Database
from models import Discount, Organization, Persona
from resolvers.engagement import referrer_for
from resolvers.links import persona_token
from settings import Settings
from tests import events_support
from tests.conftest import GraphQLClient
from tests.events_support import PHONE
from tests.factories import MadePersona, make_persona

# Dana, the persona the events name: a fixture shared through tests/events_support.py.
dana = events_support.dana

POINTS = "query ($id: ID!) { persona(id: $id) { rewardPoints pointsOverview { referralSales } } }"
RECORD_ORDERS = """
mutation ($orders: [OrderInput!]!) {
  recordOrders(input: {orders: $orders}) { userErrors { code } results { outcome userErrors { field code } } }
}
"""


async def test_the_wallet_page_shows_points_rewards_pin_and_referral_link(
    db: Database, owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(Organization).where(col(Organization.id) == org.id).values(show_pin_in_wallets=True)
        )
        await session.execute(update(Persona).where(col(Persona.id) == dana.id).values(wallet_pin="4821"))
        session.add(Discount(org_id=org.id, name="$5 off", points_cost=100))
    token = persona_token(settings, org.id, dana.id, "wallet")
    page = await owner_client.http.get(f"/wallet/{token}")
    assert page.status_code == 200
    assert "Hi Dana" in page.text
    assert "4821" in page.text
    assert "$5 off" in page.text
    assert f"{settings.public_base_url}/r/" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


async def test_invalid_wallet_links_get_the_same_plain_page(
    owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    tokens = [
        persona_token(settings, org.id, dana.id, "referral"),
        persona_token(settings, org.id, dana.id, "wallet")[:-2] + "xx",
        "garbage",
        "x" * 2000,
    ]
    pages = [await owner_client.http.get(f"/wallet/{t}") for t in tokens]
    assert {p.status_code for p in pages} == {404}
    assert len({p.text.split("</style>")[1] for p in pages}) == 1
    assert all("Dana" not in p.text for p in pages)


async def test_the_referral_link_opens_the_sign_up_form_with_the_referrer(
    owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona, db: Database
) -> None:
    token = persona_token(settings, org.id, dana.id, "referral")
    response = await owner_client.http.get(f"/r/{token}")
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/signup/acme"
    (ref,) = parse_qs(location.query)["ref"]
    async with db.session() as session:
        assert await referrer_for(session, settings, org.id, ref) == dana.id
        assert await referrer_for(session, settings, org.id, ref[:-2] + "zz") is None
    bad = await owner_client.http.get(f"/r/{token[:-2]}zz")
    assert bad.status_code == 404


async def test_a_referred_customers_orders_pay_the_referrer(
    db: Database, operator_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    # Given referral points are on, and Dana is a loyalty member
    async with db.session() as session, session.begin():
        await session.execute(
            update(Organization)
            .where(col(Organization.id) == org.id)
            .values(referral_points_enabled=True, referral_points=50, points_per_dollar_milli=1000)
        )
    await make_persona(db, org, phone=PHONE, loyalty_member=True)
    # When a friend follows Dana's referral link and signs up with it
    link = await operator_client.http.get(f"/r/{persona_token(settings, org.id, dana.id, 'referral')}")
    (ref,) = parse_qs(urlsplit(link.headers["location"]).query)["ref"]
    async with db.session() as session:
        referrer = await referrer_for(session, settings, org.id, ref)
    friend = await make_persona(
        db, org, source="LOYALTY", first_name="Sam", phone="+14155550188", loyalty_member=True, referred_by_id=referrer
    )
    # And the friend's orders arrive from the point of sale, which knows nothing of the referral
    orders = [
        {
            "externalId": f"t-{i}",
            "source": "pos",
            "customer": {"phone": "415-555-0188"},
            "placedAt": (dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(days=i)).isoformat(),
            "subtotal": "40.00",
            "tax": "6.00",
            "total": "46.00",
            "lines": [{"product": "Gummies", "quantity": 1, "unitPrice": "40.00"}],
        }
        for i in range(2)
    ]
    recorded = (await operator_client.data(RECORD_ORDERS, {"orders": orders}))["recordOrders"]
    assert [r["outcome"] for r in recorded["results"]] == ["RECORDED", "RECORDED"]
    # Then each order pays Dana REFERRAL_SALE points, and the friend earns their own
    dana_points = (await operator_client.data(POINTS, {"id": dana.gid}))["persona"]
    assert dana_points == {"rewardPoints": 100, "pointsOverview": {"referralSales": 100}}
    friend_points = (await operator_client.data(POINTS, {"id": friend.gid}))["persona"]
    assert friend_points == {"rewardPoints": 80, "pointsOverview": {"referralSales": 0}}
