"""The card's General, Points and Discounts tabs, checked against figures
computed here straight from the raw orders and ledger rows (no rollups)."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from database import Database
from models import Discount, Order, OrderLine, Organization, PointsEntry, Redemption
from models.enums import PointsEntryKind
from resolvers.discounts import redeem
from resolvers.ingest import ContactData, ingest_one
from resolvers.orders import LineData, OrderData, record_order
from resolvers.points import post_entry
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, make_persona

CARD = """
query ($id: ID!) {
  persona(id: $id) {
    rewardPoints
    optIns { channel status source updatedAt }
    shoppingHabits {
      spendAllTime salesCount averageOrder itemsPerOrder lastSeenDays shopsEveryDays
      preferredBrand { name count top { name count } }
      preferredCategory { name count top { name count } }
      preferredProduct { name count top { name count } }
    }
    favorites { products { name count } categories { name count } brands { name count } }
    customAttributes { key value source }
    tags
    traits { mobilePhone emailAddress birthday contactId importedFrom sourceId favoriteStore { name } }
    logs { firstSeenAt loyaltyEnrolledAt smsOptOutAt }
    walletPin
    links { staffApp sharing wallet referral pixelToken }
    pointsOverview {
      spentAllTime spentAsMember points pointsRedeemed adjustedByStaff boostedByAudience giftedByCampaign
      giftedByFlow expired legacyImported visitPoints collectibles referralSales lastRedemptionAt lastRedemptionDiscount
    }
    pointsReconciliation { expectedFromSpend earnedFromOrders reasons { kind points explanation } }
    discounts { discount { name pointsCost } progress pointsNeeded canRedeem }
  }
}
"""
ROOT_DISCOUNTS = "query ($active: Boolean) { discounts(activeOnly: $active) { name pointsCost startsAt endsAt } }"

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# (days ago, [(product, brand, category, quantity, unit price)])
ORDERS: list[tuple[int, list[tuple[str, str | None, str, int, str]]]] = [
    (400, [("Gary Payton 3.5g", "Cookies", "Flower", 1, "45.00"), ("Camino Gummies", "Kiva", "Edibles", 2, "20.00")]),
    (200, [("Blue Dream 3.5g", "Stiiizy", "Flower", 1, "35.00")]),
    (120, [("Camino Gummies", "Kiva", "Edibles", 1, "20.00"), ("Pod 1g", "Stiiizy", "Vapes", 3, "40.00")]),
    (30, [("Gary Payton 3.5g", "Cookies", "Flower", 2, "45.00")]),
    (3, [("Blue Dream 3.5g", "Stiiizy", "Flower", 1, "35.00"), ("Badder 1g", None, "Concentrates", 1, "40.00")]),
]


async def _org(db: Database, org: Organization) -> Organization:
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        loaded.points_per_dollar_milli = 1500
        loaded.points_per_order = 5
        loaded.show_pin_in_wallets = True
        return loaded


async def _shopper(db: Database, org: Organization) -> MadePersona:
    """A customer who bought once before joining loyalty, then kept shopping."""
    persona = await make_persona(
        db, org, first_name="Ann", last_name="Lee", phone="415-555-0134", email="ann@example.com", source_id="c-17"
    )
    for n, (days, lines) in enumerate(ORDERS):
        async with db.session() as session, session.begin():
            loaded = await session.get(Organization, org.id)
            assert loaded is not None
            if n == 1:
                joined = ContactData(
                    phone="4155550134", loyalty_member=True, loyalty_signup_at=NOW - dt.timedelta(days=250)
                )
                await ingest_one(session, loaded, "test-pos", joined, actor="test", path=[])
            subtotal = sum((Decimal(price) * qty for _, _, _, qty, price in lines), Decimal(0))
            tax = (subtotal * Decimal("0.15")).quantize(Decimal("0.01"))
            result = await record_order(
                session,
                loaded,
                OrderData(
                    external_id=f"t-{n}",
                    source="test-pos",
                    customer=ContactData(email="ANN@example.com"),
                    placed_at=NOW - dt.timedelta(days=days),
                    subtotal=subtotal,
                    tax=tax,
                    total=subtotal + tax,
                    lines=[LineData(p, q, Decimal(u), b, c) for p, b, c, q, u in lines],
                ),
                actor="test",
                path=[],
            )
            assert result.order is not None, result.errors
    async with db.session() as session, session.begin():
        for kind, delta in (
            (PointsEntryKind.CAMPAIGN_GIFT, 40),
            (PointsEntryKind.STAFF_ADJUSTMENT, -15),
            (PointsEntryKind.COLLECTIBLE, 7),
            (PointsEntryKind.EXPIRATION, -10),
        ):
            await post_entry(session, org_id=org.id, persona_id=persona.id, kind=kind, delta=delta, note="test")
        discount = Discount(org_id=org.id, name="$5 off", points_cost=100)
        session.add_all([discount, Discount(org_id=org.id, name="Big one", points_cost=5000)])
        session.add(Discount(org_id=org.id, name="Expired", points_cost=10, ends_at=NOW - dt.timedelta(days=1)))
        await session.flush()
        await redeem(session, org_id=org.id, persona_id=persona.id, discount=discount, actor="test")
    return persona


async def _raw(db: Database, org: Organization, persona: MadePersona) -> dict[str, Any]:
    async with db.session() as session:
        orders = list(
            (
                await session.execute(
                    select(Order).where(col(Order.org_id) == org.id, col(Order.persona_id) == persona.id)
                )
            )
            .scalars()
            .all()
        )
        lines = list((await session.execute(select(OrderLine).where(col(OrderLine.org_id) == org.id))).scalars().all())
        entries = list(
            (await session.execute(select(PointsEntry).where(col(PointsEntry.persona_id) == persona.id)))
            .scalars()
            .all()
        )
        redemptions = list((await session.execute(select(Redemption))).scalars().all())
    return {"orders": orders, "lines": lines, "entries": entries, "redemptions": redemptions}


def _money(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2))


def _preference(counts: Counter[str], latest: dict[str, dt.datetime]) -> dict[str, Any] | None:
    if not counts:
        return None
    ranked = sorted(counts, key=lambda n: (-counts[n], -latest[n].timestamp(), n))[:5]
    return {"name": ranked[0], "count": counts[ranked[0]], "top": [{"name": n, "count": counts[n]} for n in ranked]}


async def test_every_card_figure_matches_the_raw_rows(
    owner_client: GraphQLClient, db: Database, org: Organization
) -> None:
    # given a shopper with orders before and after joining, gifts, an adjustment, an expiry and a redemption
    org = await _org(db, org)
    persona = await _shopper(db, org)
    raw = await _raw(db, org, persona)

    # when the card is read
    card = (await owner_client.data(CARD, {"id": persona.gid}))["persona"]

    # then the shopping figures are those of the raw orders
    orders = raw["orders"]
    habits = card["shoppingHabits"]
    spend = sum(o.total_cents for o in orders)
    assert habits["spendAllTime"] == _money(spend)
    assert habits["salesCount"] == len(orders) == 5
    assert Decimal(habits["averageOrder"]) == (Decimal(spend) / 100 / len(orders)).quantize(Decimal("0.01"))
    assert habits["itemsPerOrder"] == pytest.approx(sum(o.item_count for o in orders) / len(orders), abs=0.01)
    placed = sorted(o.placed_at for o in orders)
    assert habits["lastSeenDays"] == (dt.datetime.now(dt.UTC) - placed[-1]).days == 3
    assert habits["shopsEveryDays"] == pytest.approx((placed[-1] - placed[0]).total_seconds() / 86400 / 4, abs=0.01)

    by_order = {o.id: o for o in orders}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    latest: dict[str, dict[str, dt.datetime]] = defaultdict(dict)
    for line in raw["lines"]:
        order = by_order.get(line.order_id)
        if order is None:
            continue
        for dimension, name in (("product", line.product), ("brand", line.brand), ("category", line.category)):
            if name is None:
                continue
            seen = latest[dimension].get(name)
            if seen != order.placed_at:  # one count per order, not per line
                counts[dimension][name] += 1 if seen is None or seen != order.placed_at else 0
            latest[dimension][name] = max(seen or order.placed_at, order.placed_at)
    assert habits["preferredBrand"] == _preference(counts["brand"], latest["brand"])
    assert habits["preferredCategory"] == _preference(counts["category"], latest["category"])
    assert habits["preferredProduct"] == _preference(counts["product"], latest["product"])
    assert habits["preferredCategory"]["name"] == "Flower"  # in four orders
    favorites = card["favorites"]
    assert favorites["brands"] == _preference(counts["brand"], latest["brand"])["top"]  # type: ignore[index]

    # and the points figures are those of the raw ledger
    entries = raw["entries"]
    by_kind: Counter[str] = Counter()
    for e in entries:
        by_kind[e.kind] += e.delta
    balance = sum(e.delta for e in entries)
    overview = card["pointsOverview"]
    assert card["rewardPoints"] == overview["points"] == balance
    member_orders = [o for o in orders if o.member_at_order]
    assert len(member_orders) == 4
    assert overview["spentAllTime"] == _money(sum(o.subtotal_cents for o in orders))
    assert overview["spentAsMember"] == _money(sum(o.subtotal_cents for o in member_orders))
    assert overview["pointsRedeemed"] == 100 == -by_kind["REDEMPTION"]
    assert overview["adjustedByStaff"] == -15
    assert overview["giftedByCampaign"] == 40
    assert overview["collectibles"] == 7
    assert overview["expired"] == 10
    assert overview["visitPoints"] == 5 * 4 == by_kind["VISIT"]
    assert overview["lastRedemptionDiscount"] == "$5 off"
    expected_from_spend = math.floor(sum(o.subtotal_cents for o in member_orders) / 100 * 1.5)
    reconciliation = card["pointsReconciliation"]
    assert reconciliation["expectedFromSpend"] == expected_from_spend
    assert reconciliation["earnedFromOrders"] == by_kind["ORDER"]
    lines = {line["kind"]: line["points"] for line in reconciliation["reasons"]}
    assert lines["VISIT"] == 20
    assert lines["REDEMPTION"] == -100
    assert lines["EXPIRATION"] == -10
    # the lines account for the whole difference between the balance and spend x rate
    assert expected_from_spend + sum(lines.values()) == balance

    # and the discounts tab shows progress on the discounts active now
    offers = {o["discount"]["name"]: o for o in card["discounts"]}
    assert set(offers) == {"$5 off", "Big one"}
    assert offers["$5 off"]["canRedeem"] is (balance >= 100)
    assert offers["Big one"]["progress"] == pytest.approx(balance / 5000)
    assert offers["Big one"]["pointsNeeded"] == 5000 - balance


async def test_general_tab_consents_traits_logs_and_links(
    owner_client: GraphQLClient, db: Database, org: Organization
) -> None:
    from resolvers.ingest import ConsentData

    persona = await make_persona(
        db,
        org,
        first_name="Bo",
        phone="(415) 555-0100",
        email="bo@example.com",
        birthday=dt.date(1990, 4, 20),
        source_id="pos-9",
        attributes=[("budtender", "Sam"), ("medical", "yes")],
        tags=["vip", "veteran"],
        consents=[ConsentData("TEXT", "OPTED_OUT", "INTEGRATION"), ConsentData("EMAIL", "OPTED_IN", "IMPORT")],
    )
    card = (await owner_client.data(CARD, {"id": persona.gid}))["persona"]
    opt_ins = {o["channel"]: o for o in card["optIns"]}
    assert len(opt_ins) == 8
    assert opt_ins["TEXT"]["status"] == "OPTED_OUT"
    assert opt_ins["TEXT"]["source"] == "INTEGRATION"
    assert opt_ins["EMAIL"]["status"] == "OPTED_IN"
    assert opt_ins["VOICE_DROP"] == {"channel": "VOICE_DROP", "status": "UNKNOWN", "source": None, "updatedAt": None}
    assert card["logs"]["smsOptOutAt"] == opt_ins["TEXT"]["updatedAt"]
    assert card["tags"] == ["veteran", "vip"]
    assert [(a["key"], a["value"], a["source"]) for a in card["customAttributes"]] == [
        ("budtender", "Sam", "POS_GROUP"),
        ("medical", "yes", "POS_GROUP"),
    ]
    traits = card["traits"]
    assert traits["mobilePhone"] == "+14155550100"
    assert traits["emailAddress"] == "bo@example.com"
    assert traits["birthday"] == "1990-04-20"
    assert traits["sourceId"] == "pos-9"
    assert traits["importedFrom"] == "test-pos"
    assert card["shoppingHabits"]["salesCount"] == 0
    assert card["shoppingHabits"]["averageOrder"] is None
    assert card["shoppingHabits"]["shopsEveryDays"] is None
    assert card["walletPin"] is None  # the organization does not show PINs
    links = card["links"]
    assert links["wallet"].startswith("http://127.0.0.1:8000/wallet/")
    assert links["referral"].startswith("http://127.0.0.1:8000/r/")
    assert str(persona.number) in links["staffApp"]
    from resolvers.links import read_persona_token
    from settings import get_settings

    assert read_persona_token(get_settings(), links["pixelToken"], "pixel") is not None
    assert read_persona_token(get_settings(), links["pixelToken"], "wallet") is None


async def test_root_discounts_filter_to_the_active_window(
    owner_client: GraphQLClient, db: Database, org: Organization
) -> None:
    async with db.session() as session, session.begin():
        session.add_all(
            [
                Discount(org_id=org.id, name="Always", points_cost=100),
                Discount(org_id=org.id, name="Later", points_cost=100, starts_at=NOW + dt.timedelta(days=3)),
                Discount(org_id=org.id, name="Gone", points_cost=100, ends_at=NOW - dt.timedelta(days=3)),
            ]
        )
    active = (await owner_client.data(ROOT_DISCOUNTS, {"active": True}))["discounts"]
    assert [d["name"] for d in active] == ["Always"]
    every = (await owner_client.data(ROOT_DISCOUNTS, {"active": False}))["discounts"]
    assert sorted(d["name"] for d in every) == ["Always", "Gone", "Later"]
