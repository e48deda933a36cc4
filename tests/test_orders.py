"""recordOrders through GraphQL: identity, idempotency, row errors, rollups,
and accrual (rate, visit, audience boost, referral, non-members, archived)
checked against an independent computation."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from database import Database
from models import Audience, Organization, Store
from permissions.matrix import Role
from resolvers import rollups
from schema.ids import from_global_id, to_global_id
from tests.conftest import ClientFactory, GraphQLClient

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"

PERSONA_FIELDS = """
    id number archivedAt loyaltyMember sourcedFrom { kind integration } rewardPoints
    pointsOverview { points visitPoints boostedByAudience referralSales spentAllTime spentAsMember }
    shoppingHabits { spendAllTime salesCount }
    history { orders { totalCount } }
"""
RECORD_ORDERS = f"""
mutation ($input: RecordOrdersInput!) {{
  recordOrders(input: $input) {{
    results {{
      index outcome
      order {{
        id externalId subtotal tax total itemCount placedAt pointsEarned
        store {{ name }} lines {{ product quantity unitPrice }}
      }}
      persona {{ {PERSONA_FIELDS} }}
      userErrors {{ field message code }}
    }}
    userErrors {{ field message code }}
  }}
}}
"""
INGEST = """
mutation ($input: IngestContactsInput!) {
  ingestContacts(input: $input) { results { outcome persona { id number } userErrors { code } } }
}
"""
ARCHIVE = """
mutation ($id: ID!) { archivePersona(input: {personaId: $id}) { userErrors { code } } }
"""
SAVE_AUDIENCE = """
mutation ($input: SaveAudienceInput!) { saveAudience(input: $input) { userErrors { code message } } }
"""
OUTCOMES = """
mutation ($input: RecordOrdersInput!) { recordOrders(input: $input) { results { outcome } } }
"""
PERSONA = f"query ($id: ID!) {{ persona(id: $id) {{ {PERSONA_FIELDS} }} }}"
PERSONAS = "query { personas(includeArchived: true) { totalCount } }"


def ticket(
    external_id: str,
    customer: dict[str, Any],
    subtotal: str = "20.00",
    *,
    lines: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    tax = (Decimal(subtotal) * Decimal("0.15")).quantize(Decimal("0.01"))
    return {
        "externalId": external_id,
        "source": "acme-pos",
        "customer": customer,
        "placedAt": "2025-03-01T18:30:00Z",
        "subtotal": subtotal,
        "tax": str(tax),
        "total": str(Decimal(subtotal) + tax),
        "lines": lines
        if lines is not None
        else [
            {
                "product": "Blue Dream 3.5g",
                "brand": "Stiiizy",
                "category": "Flower",
                "quantity": 2,
                "unitPrice": "10.00",
            }
        ],
        **extra,
    }


async def record(client: GraphQLClient, *orders: dict[str, Any]) -> list[dict[str, Any]]:
    data = await client.data(RECORD_ORDERS, {"input": {"orders": list(orders)}})
    payload = data["recordOrders"]
    assert payload["userErrors"] == []
    results: list[dict[str, Any]] = payload["results"]
    assert [r["index"] for r in results] == list(range(len(orders)))
    return results


def errors_of(result: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in result["userErrors"]]


async def set_loyalty(db: Any, org: Organization, **values: Any) -> None:
    assert isinstance(db, Database)
    async with db.session() as session, session.begin():
        await session.execute(update(Organization).where(Organization.id == org.id).values(**values))  # type: ignore[arg-type]


async def test_an_order_of_a_new_customer_makes_its_persona(operator_client: GraphQLClient) -> None:
    lines = [
        {"product": "Blue Dream 3.5g", "brand": "Stiiizy", "category": "Flower", "quantity": 2, "unitPrice": "35.00"},
        {"product": "Camino Gummies", "brand": "Kiva", "category": "Edibles", "quantity": 1, "unitPrice": "20.00"},
    ]

    (result,) = await record(operator_client, ticket("t-1", {"phone": ANN_PHONE}, "90.00", lines=lines))

    assert result["outcome"] == "RECORDED"
    assert result["userErrors"] == []
    placed = result["order"]
    assert (placed["externalId"], placed["subtotal"], placed["tax"], placed["total"]) == (
        "t-1",
        "90.00",
        "13.50",
        "103.50",
    )
    assert placed["itemCount"] == 3
    assert [(ln["product"], ln["quantity"], ln["unitPrice"]) for ln in placed["lines"]] == [
        ("Blue Dream 3.5g", 2, "35.00"),
        ("Camino Gummies", 1, "20.00"),
    ]
    persona = result["persona"]
    assert persona["sourcedFrom"] == {"kind": "INTEGRATION", "integration": "acme-pos"}
    assert persona["loyaltyMember"] is False
    assert persona["rewardPoints"] == 0, "not a loyalty member: no points"
    assert persona["shoppingHabits"] == {"spendAllTime": "103.50", "salesCount": 1}


async def test_an_order_placed_at_any_offset_is_that_instant_shown_in_utc(operator_client: GraphQLClient) -> None:
    # Given the same moment written with an offset, in UTC, and with a fraction of a second
    at = ("2025-03-01T18:30:00.25+05:30", "2025-03-01T13:00:00.250000Z", "2025-03-01T08:00:00.25-05:00")
    orders = [{**ticket(f"t-{i}", {"phone": ANN_PHONE}), "placedAt": when} for i, when in enumerate(at)]
    # When the orders are recorded
    results = await record(operator_client, *orders)
    # Then each is placed at that instant, read back in UTC
    assert [r["order"]["placedAt"] for r in results] == ["2025-03-01T13:00:00.250000+00:00"] * 3


async def test_a_replayed_order_is_a_duplicate_and_changes_nothing(operator_client: GraphQLClient) -> None:
    order = ticket("t-1", {"phone": ANN_PHONE, "loyaltyMember": True}, "40.00")
    (first,) = await record(operator_client, order)

    replayed = await record(operator_client, order, {**order, "customer": {"phone": ANN_PHONE, "firstName": "Other"}})
    in_one_batch = await record(
        operator_client, ticket("t-2", {"phone": ANN_PHONE}), ticket("t-2", {"phone": ANN_PHONE})
    )

    assert [r["outcome"] for r in replayed] == ["DUPLICATE", "DUPLICATE"]
    assert all(r["order"]["id"] == first["order"]["id"] for r in replayed)
    assert replayed[1]["persona"]["id"] == first["persona"]["id"]
    assert [r["outcome"] for r in in_one_batch] == ["RECORDED", "DUPLICATE"]
    assert in_one_batch[1]["order"]["id"] == in_one_batch[0]["order"]["id"]
    after = (await operator_client.data(PERSONA, {"id": first["persona"]["id"]}))["persona"]
    assert after["history"]["orders"]["totalCount"] == 2
    assert after["shoppingHabits"]["salesCount"] == 2
    assert after["rewardPoints"] == first["persona"]["rewardPoints"] + in_one_batch[0]["order"]["pointsEarned"]


async def test_an_order_without_a_usable_contact_is_refused(operator_client: GraphQLClient) -> None:
    results = await record(
        operator_client,
        ticket("t-1", {"firstName": "Walk-in"}),
        ticket("t-2", {"phone": "555-555-5555", "email": "none@none.com"}),
        ticket("t-3", {"phone": "123"}),
    )

    path = ["input", "orders"]
    assert [r["outcome"] for r in results] == ["REJECTED"] * 3
    assert errors_of(results[0]) == [("NO_CONTACT_INFO", [*path, "0", "customer"])]
    assert errors_of(results[1]) == [("NO_CONTACT_INFO", [*path, "1", "customer"])]
    assert errors_of(results[2]) == [("INVALID_PHONE", [*path, "2", "customer", "phone"])]
    assert all(r["order"] is None and r["persona"] is None for r in results)
    assert (await operator_client.data(PERSONAS))["personas"]["totalCount"] == 0


async def test_bad_order_fields_are_row_errors_and_write_nothing(
    operator_client: GraphQLClient, db: Any, org: Organization
) -> None:
    assert isinstance(db, Database)
    async with db.session() as session, session.begin():
        store = Store(org_id=org.id, name="Downtown")
        session.add(store)
    ann = {"phone": ANN_PHONE}
    bad_line = {"product": " ", "quantity": 0, "unitPrice": "-1"}

    results = await record(
        operator_client,
        {**ticket("t-1", ann), "subtotal": "-5.00"},
        ticket("t-2", ann, lines=[bad_line]),
        {**ticket("t-3", ann), "placedAt": "2025-03-01T18:30:00"},
        ticket("t-4", {"email": ANN_EMAIL}, storeId="nonsense"),
        ticket("t-5", {"email": ANN_EMAIL}, storeId=to_global_id("Store", org.id)),
        ticket("t-6", {"email": ANN_EMAIL}, referredByNumber=999),
        ticket("", ann),
        ticket("t-8", ann, storeId=to_global_id("Store", store.id)),
    )

    path = ["input", "orders"]
    assert [r["outcome"] for r in results] == ["REJECTED"] * 7 + ["RECORDED"]
    assert errors_of(results[0]) == [("INVALID", [*path, "0", "subtotal"])]
    assert errors_of(results[1]) == [
        ("INVALID", [*path, "1", "lines", "0", "quantity"]),
        ("INVALID", [*path, "1", "lines", "0", "unitPrice"]),
        ("INVALID", [*path, "1", "lines", "0", "product"]),
    ]
    assert errors_of(results[2]) == [("INVALID", [*path, "2", "placedAt"])]
    assert errors_of(results[3]) == [("INVALID", [*path, "3", "storeId"])]
    assert errors_of(results[4]) == [("NOT_FOUND", [*path, "4", "storeId"])]
    assert errors_of(results[5]) == [("NOT_FOUND", [*path, "5", "referredByNumber"])]
    assert errors_of(results[6]) == [("INVALID", [*path, "6", "externalId"])]
    assert results[7]["order"]["store"] == {"name": "Downtown"}
    # Rows 3 to 5 named a new customer by email: a refused order leaves no persona behind.
    assert (await operator_client.data(PERSONAS))["personas"]["totalCount"] == 1


async def test_more_than_a_thousand_orders_are_refused_whole(operator_client: GraphQLClient) -> None:
    orders = [ticket(f"t-{i}", {"phone": ANN_PHONE}) for i in range(1001)]

    data = await operator_client.data(RECORD_ORDERS, {"input": {"orders": orders}})

    payload = data["recordOrders"]
    assert payload["results"] == []
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("TOO_MANY", ["input", "orders"])]
    assert (await operator_client.data(PERSONAS))["personas"]["totalCount"] == 0


async def test_staff_may_not_record_orders(staff_client: GraphQLClient) -> None:
    data = await staff_client.data(RECORD_ORDERS, {"input": {"orders": [ticket("t-1", {"phone": ANN_PHONE})]}})

    assert [e["code"] for e in data["recordOrders"]["userErrors"]] == ["FORBIDDEN"]


# Accrual -----------------------------------------------------------------------------------

RATE, PER_ORDER, REFERRAL = Decimal("1.5"), 5, 50
ALL_MULTIPLIER, VIP_MULTIPLIER = Decimal("1.25"), Decimal("2")


def expected_order_points(subtotal: Decimal, multiplier: Decimal) -> int:
    """DESIGN's accrual, computed in decimals rather than the code's integer thousandths."""
    base = math.floor(subtotal * RATE)
    boost = math.floor(base * (multiplier - 1))
    return base + PER_ORDER + boost


async def test_accrual_follows_every_rule(
    client_for: ClientFactory, owner_client: GraphQLClient, db: Any, org: Organization
) -> None:
    # Given the loyalty settings, a boosting default audience and a better one for VIPs.
    await set_loyalty(
        db,
        org,
        points_per_dollar_milli=1500,
        points_per_order=PER_ORDER,
        referral_points_enabled=True,
        referral_points=REFERRAL,
    )
    async with db.session() as session, session.begin():
        await session.execute(
            update(Audience).where(Audience.org_id == org.id, Audience.is_default).values(points_multiplier_milli=1250)  # type: ignore[arg-type]
        )
    saved = await owner_client.data(
        SAVE_AUDIENCE, {"input": {"name": "VIPs", "query": "tag:vip", "pointsMultiplier": str(VIP_MULTIPLIER)}}
    )
    assert saved["saveAudience"]["userErrors"] == []
    pos = await client_for(Role.OPERATOR)
    people: dict[str, dict[str, Any]] = {
        "member": {"phone": "+14155550101", "loyaltyMember": True},
        "vip": {"phone": "+14155550102", "loyaltyMember": True, "tags": ["vip"]},
        "guest": {"phone": "+14155550103"},
        "archived": {"phone": "+14155550104", "loyaltyMember": True},
        "referrer": {"phone": "+14155550105", "loyaltyMember": True},
        "guest_referrer": {"phone": "+14155550106"},
    }
    made = await pos.data(INGEST, {"input": {"source": "acme-pos", "contacts": list(people.values())}})
    ids = {name: r["persona"] for name, r in zip(people, made["ingestContacts"]["results"], strict=True)}
    assert (await owner_client.data(ARCHIVE, {"id": ids["archived"]["id"]}))["archivePersona"]["userErrors"] == []

    # When each places orders with random subtotals, some of them naming the friend who referred them.
    rng = random.Random(20)
    orders, expected = [], dict.fromkeys(people, 0)
    multiplier = {"member": ALL_MULTIPLIER, "vip": VIP_MULTIPLIER}
    friend_of: dict[str, str] = {}  # a customer's first referrer is theirs: their later orders pay them too
    for n in range(24):
        who = ["member", "vip", "guest", "archived"][n % 4]
        subtotal = Decimal(rng.randint(0, 25_000)).scaleb(-2)
        referred_by = rng.choice([None, None, "referrer", "guest_referrer"])
        extra = {"referredByNumber": ids[referred_by]["number"]} if referred_by else {}
        orders.append(ticket(f"t-{n}", {"phone": people[who]["phone"]}, str(subtotal), **extra))
        if who in multiplier:
            expected[who] += expected_order_points(subtotal, multiplier[who])
        if referred_by:
            friend_of.setdefault(who, referred_by)
        if (referred_by or friend_of.get(who)) == "referrer":
            expected["referrer"] += REFERRAL
    results = await record(pos, *orders)

    # Then every persona has exactly the independently computed points.
    assert all(r["outcome"] == "RECORDED" for r in results), [r["userErrors"] for r in results]
    for name, made_persona in ids.items():
        persona = (await owner_client.data(PERSONA, {"id": made_persona["id"]}))["persona"]
        assert persona["rewardPoints"] == expected[name], name
        assert persona["pointsOverview"]["points"] == expected[name], name
    for order_input, result in zip(orders, results, strict=True):
        who = next(name for name, p in people.items() if p["phone"] == order_input["customer"]["phone"])
        subtotal = Decimal(order_input["subtotal"])
        wanted = expected_order_points(subtotal, multiplier[who]) if who in multiplier else 0
        assert result["order"]["pointsEarned"] == wanted, (who, subtotal)
    vip = (await owner_client.data(PERSONA, {"id": ids["vip"]["id"]}))["persona"]["pointsOverview"]
    assert vip["visitPoints"] == PER_ORDER * 6
    assert vip["boostedByAudience"] > 0
    referrer = (await owner_client.data(PERSONA, {"id": ids["referrer"]["id"]}))["persona"]
    assert referrer["pointsOverview"]["referralSales"] == expected["referrer"]
    archived = (await owner_client.data(PERSONA, {"id": ids["archived"]["id"]}))["persona"]
    assert archived["archivedAt"] is not None, "an order does not restore an archived persona"
    assert archived["shoppingHabits"]["salesCount"] == 6

    # And every rollup equals a recompute from the raw rows.
    async with db.session() as session:
        for made_persona in ids.values():
            persona_id = from_global_id(made_persona["id"], "Persona")
            assert await rollups.stored(session, org.id, persona_id) == await rollups.recompute(
                session, org.id, persona_id
            )


@pytest.mark.parametrize("enabled", [True, False])
async def test_a_referral_pays_the_referrer_only_where_the_setting_is_on(
    operator_client: GraphQLClient, db: Any, org: Organization, enabled: bool
) -> None:
    await set_loyalty(db, org, referral_points_enabled=enabled, referral_points=REFERRAL, points_per_order=0)
    made = await operator_client.data(
        INGEST, {"input": {"source": "acme-pos", "contacts": [{"phone": "+14155550105", "loyaltyMember": True}]}}
    )
    referrer = made["ingestContacts"]["results"][0]["persona"]

    (result,) = await record(
        operator_client, ticket("t-1", {"phone": ANN_PHONE}, "10.00", referredByNumber=referrer["number"])
    )

    assert result["outcome"] == "RECORDED"
    after = (await operator_client.data(PERSONA, {"id": referrer["id"]}))["persona"]
    assert after["pointsOverview"]["referralSales"] == (REFERRAL if enabled else 0)
    assert result["persona"]["rewardPoints"] == 0, "the referred customer is no member"


async def test_an_order_can_enroll_its_customer_first(
    operator_client: GraphQLClient, db: Any, org: Organization
) -> None:
    await set_loyalty(db, org, points_per_dollar_milli=1000, points_per_order=2)

    (result,) = await record(operator_client, ticket("t-1", {"email": ANN_EMAIL, "loyaltyMember": True}, "12.99"))

    assert result["persona"]["loyaltyMember"] is True
    assert result["order"]["pointsEarned"] == 12 + 2
    assert result["persona"]["pointsOverview"]["spentAsMember"] == "12.99"


async def test_orders_of_known_customers_take_a_bounded_number_of_statements(
    operator_client: GraphQLClient, statements: Any
) -> None:
    phones = [f"+1415555{i:04d}" for i in range(5)]
    made = await operator_client.data(
        INGEST, {"input": {"source": "acme-pos", "contacts": [{"phone": p, "loyaltyMember": True} for p in phones]}}
    )
    assert {r["outcome"] for r in made["ingestContacts"]["results"]} == {"CREATED"}
    orders = [ticket(f"t-{n}", {"phone": phones[n % 5]}) for n in range(20)]

    statements.count, statements.active = 0, True
    data = await operator_client.data(OUTCOMES, {"input": {"orders": orders}})
    statements.active = False

    assert {r["outcome"] for r in data["recordOrders"]["results"]} == {"RECORDED"}
    # Per order: a savepoint and its release, the customer's keys, the order, its lines, one rollup
    # update, the points entries and the purchase counts; per call a handful (key, replays, audiences,
    # audit, payload).
    assert statements.count <= 8 * len(orders) + 10, statements.count
