"""Set-wise ingestion through GraphQL (resolvers/ingest_batch.py, resolvers/orders_batch.py):
a batch gives the same results and data as its rows sent one call at a time (new, known,
repeated, merging and rejected rows mixed); a replayed batch of orders changes nothing;
a batch's statement count does not grow with its size; rollups and the ledger hold."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlmodel import col

from database import Database
from models import Organization, PointsEntry
from permissions.matrix import Role
from resolvers import rollups
from schema.ids import from_global_id
from tests.conftest import ClientFactory, GraphQLClient

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"
BEA_PHONE, BEA_EMAIL = "(646) 783-0134", "bea@example.com"
CAL_PHONE, CAL_EMAIL = "(212) 736-5001", "cal@example.com"

INGEST = """
mutation ($input: IngestContactsInput!) {
  ingestContacts(input: $input) {
    results { index outcome persona { id number } userErrors { field code } }
    userErrors { code }
  }
}
"""
RECORD = """
mutation ($input: RecordOrdersInput!) {
  recordOrders(input: $input) {
    results { index outcome order { id pointsEarned } persona { id number } userErrors { field code } }
    userErrors { code }
  }
}
"""
CARD = """
query ($id: ID!) {
  persona(id: $id) {
    firstName lastName email phone birthday loyaltyMember mergedInto { email }
    sourcedFrom { kind integration }
    rewardPoints
    pointsOverview { points visitPoints boostedByAudience referralSales legacyImported spentAllTime spentAsMember }
    shoppingHabits { salesCount spendAllTime }
    customAttributes { key value source }
    tags
    optIns { channel status source }
    history { orders { totalCount } points { totalCount } merges { nodes { kind reason } } }
  }
}
"""
PERSONAS = "query { personas(includeArchived: true) { totalCount } }"


async def ingest(client: GraphQLClient, *contacts: dict[str, Any]) -> list[dict[str, Any]]:
    data = await client.data(INGEST, {"input": {"source": "acme-pos", "contacts": list(contacts)}})
    assert data["ingestContacts"]["userErrors"] == []
    results: list[dict[str, Any]] = data["ingestContacts"]["results"]
    return results


async def record(client: GraphQLClient, *orders: dict[str, Any]) -> list[dict[str, Any]]:
    data = await client.data(RECORD, {"input": {"orders": list(orders)}})
    assert data["recordOrders"]["userErrors"] == []
    results: list[dict[str, Any]] = data["recordOrders"]["results"]
    return results


async def card(client: GraphQLClient, persona_id: str) -> dict[str, Any]:
    persona: dict[str, Any] = (await client.data(CARD, {"id": persona_id}))["persona"]
    persona["customAttributes"] = sorted(persona["customAttributes"], key=json.dumps)
    return persona


def ticket(external_id: str, customer: dict[str, Any], subtotal: str = "20.00", **extra: Any) -> dict[str, Any]:
    return {
        "externalId": external_id,
        "source": "acme-pos",
        "customer": customer,
        "placedAt": "2025-03-01T18:30:00Z",
        "subtotal": subtotal,
        "tax": "1.00",
        "total": str(Decimal(subtotal) + 1),
        "lines": [
            {
                "product": "Blue Dream 3.5g",
                "brand": "Stiiizy",
                "category": "Flower",
                "quantity": 1,
                "unitPrice": "8.00",
            },
            {"product": "Camino Gummies", "brand": "Kiva", "category": "Edibles", "quantity": 2, "unitPrice": "6.00"},
        ],
        **extra,
    }


def outcomes(results: list[dict[str, Any]]) -> list[str]:
    return [r["outcome"] for r in results]


def errors_of(results: list[dict[str, Any]]) -> list[list[tuple[str, list[str]]]]:
    """Each row's error codes and fields below the row ('input', 'contacts', '<index>' left out)."""
    return [[(e["code"], e["field"][3:]) for e in r["userErrors"]] for r in results]


def persona_ids(results: list[dict[str, Any]]) -> list[str | None]:
    return [r["persona"]["id"] if r["persona"] else None for r in results]


async def test_one_new_customer_twice_in_a_batch_is_created_then_updated(operator_client: GraphQLClient) -> None:
    contacts: list[dict[str, Any]] = [{"phone": f"+1415555{i:04d}"} for i in range(10)]
    contacts[3] = {
        "phone": ANN_PHONE,
        "firstName": "Ann",
        "tags": ["vip"],
        "attributes": [{"key": "tier", "value": "s"}],
    }
    contacts[7] = {
        "phone": "415.867.5309",
        "email": ANN_EMAIL,
        "lastName": "Lee",
        "tags": ["medical"],
        "attributes": [{"key": "tier", "value": "gold"}],
        "consents": [{"channel": "EMAIL", "status": "OPTED_IN", "source": "INTEGRATION"}],
    }

    results = await ingest(operator_client, *contacts)

    assert outcomes(results) == ["CREATED"] * 7 + ["UPDATED"] + ["CREATED"] * 2
    assert results[3]["persona"] == results[7]["persona"]
    assert len(set(persona_ids(results))) == 9
    ann = await card(operator_client, results[7]["persona"]["id"])
    assert (ann["firstName"], ann["lastName"], ann["phone"], ann["email"]) == ("Ann", "Lee", "+14158675309", ANN_EMAIL)
    assert sorted(ann["tags"]) == ["medical", "vip"]
    assert ann["customAttributes"] == [{"key": "tier", "value": "gold", "source": "POS_GROUP"}]
    assert {"channel": "EMAIL", "status": "OPTED_IN", "source": "INTEGRATION"} in ann["optIns"]
    assert (await operator_client.data(PERSONAS))["personas"]["totalCount"] == 9
    (again,) = await ingest(operator_client, {"email": ANN_EMAIL})
    assert (again["outcome"], again["persona"]) == ("UPDATED", results[3]["persona"])


def mixed_contacts() -> list[dict[str, Any]]:
    """New, known, rejected, merging and repeated customers, in one order."""
    return [
        {"sourceId": "x-1", "phone": CAL_PHONE, "firstName": "Cal", "legacyPoints": 30, "loyaltyMember": True},
        {"phone": ANN_PHONE, "email": ANN_EMAIL, "attributes": [{"key": "tier", "value": "gold"}], "tags": ["vip"]},
        {"phone": "12345", "email": "dee@example.com"},
        {"email": "eve@example.com", "consents": [{"channel": "TEXT", "status": "OPTED_OUT", "source": "INTEGRATION"}]},
        {"phone": ANN_PHONE, "email": BEA_EMAIL, "lastName": "Lee"},
        {"sourceId": "x-1", "email": CAL_EMAIL, "phone": CAL_PHONE, "legacyPoints": 30, "tags": ["new"]},
        {"email": "eve@example.com", "phone": "+14155550199", "firstName": "Eve"},
        {"email": BEA_EMAIL, "firstName": "Bea", "attributes": [{"key": "tier", "value": "silver"}]},
        {"phone": "555-555-5555"},
        {"phone": "+14155550123", "consents": [{"channel": "TEXT", "status": "OPTED_IN", "source": "INTEGRATION"}]},
    ]


async def given_ann_and_bea(client: GraphQLClient) -> None:
    await ingest(
        client,
        {"sourceId": "a-1", "phone": ANN_PHONE, "firstName": "Ann", "legacyPoints": 100, "loyaltyMember": True},
    )
    await ingest(client, {"email": BEA_EMAIL, "attributes": [{"key": "budtender", "value": "Sam"}]})


async def cards_of(client: GraphQLClient, ids: list[str | None]) -> list[dict[str, Any]]:
    return [await card(client, i) if i else {} for i in ids]


async def test_a_mixed_batch_gives_what_its_rows_one_call_at_a_time_give(
    client_for: ClientFactory, other_org: Any
) -> None:
    batch, one_by_one = await client_for(Role.OPERATOR), await client_for(Role.OPERATOR, other_org)
    await given_ann_and_bea(batch)
    await given_ann_and_bea(one_by_one)

    together = await ingest(batch, *mixed_contacts())
    alone = [(await ingest(one_by_one, contact))[0] for contact in mixed_contacts()]

    assert outcomes(together) == outcomes(alone)
    expected = ["CREATED", "UPDATED", "REJECTED", "CREATED", "MERGED", "UPDATED", "UPDATED", "UPDATED", "REJECTED"]
    assert outcomes(together) == [*expected, "CREATED"]
    assert errors_of(together) == errors_of(alone)
    assert await cards_of(batch, persona_ids(together)) == await cards_of(one_by_one, persona_ids(alone))
    assert (await batch.data(PERSONAS)) == (await one_by_one.data(PERSONAS))


async def set_loyalty(db: Any, *orgs: Organization, **values: Any) -> None:
    assert isinstance(db, Database)
    async with db.session() as session, session.begin():
        for org in orgs:
            await session.execute(update(Organization).where(Organization.id == org.id).values(**values))  # type: ignore[arg-type]


async def test_a_mixed_batch_of_orders_gives_what_its_orders_one_call_at_a_time_give(
    client_for: ClientFactory, db: Any, org: Organization, other_org: Organization
) -> None:
    await set_loyalty(
        db,
        org,
        other_org,
        points_per_dollar_milli=1500,
        points_per_order=5,
        referral_points_enabled=True,
        referral_points=50,
    )
    batch, one_by_one = await client_for(Role.OPERATOR), await client_for(Role.OPERATOR, other_org)
    numbers = []
    for client in (batch, one_by_one):
        await given_ann_and_bea(client)
        (ann,) = await ingest(client, {"phone": ANN_PHONE})
        numbers.append(ann["persona"]["number"])

    def orders(ann_number: int) -> list[dict[str, Any]]:
        cal = {"phone": CAL_PHONE, "loyaltyMember": True}
        return [
            ticket("t-1", cal, "10.00"),
            ticket("t-2", {"phone": ANN_PHONE}, "31.99"),
            ticket("t-3", {**cal, "email": CAL_EMAIL}, "5.00"),
            ticket("t-4", {"phone": ANN_PHONE, "email": BEA_EMAIL}, "12.50"),
            ticket("t-5", {"email": BEA_EMAIL}, "7.00"),
            ticket("t-2", {"phone": ANN_PHONE}, "31.99"),
            ticket("t-7", {"phone": "12345"}),
            ticket("t-8", {"email": CAL_EMAIL}, "40.00", referredByNumber=ann_number),
            ticket("t-9", {"phone": CAL_PHONE}, "1.00"),
            ticket("t-10", {"phone": "+14155550123", "loyaltyMember": True}, "3.00", referredByNumber=10**6),
        ]

    together = await record(batch, *orders(numbers[0]))
    alone = [(await record(one_by_one, order))[0] for order in orders(numbers[1])]

    assert outcomes(together) == outcomes(alone)
    assert outcomes(together) == [*["RECORDED"] * 5, "DUPLICATE", "REJECTED", "RECORDED", "RECORDED", "REJECTED"]
    assert together[5]["order"] == together[1]["order"]
    assert [r["order"]["pointsEarned"] if r["order"] else None for r in together] == [
        r["order"]["pointsEarned"] if r["order"] else None for r in alone
    ]
    assert errors_of(together) == errors_of(alone)
    assert await cards_of(batch, persona_ids(together)) == await cards_of(one_by_one, persona_ids(alone))
    ann = await card(batch, together[1]["persona"]["id"])
    assert ann["pointsOverview"]["referralSales"] == 50 * 2, "Cal's referred order, then the order after it"
    await assert_rollups_and_ledgers_hold(db, org, together)


async def assert_rollups_and_ledgers_hold(db: Any, org: Organization, results: list[dict[str, Any]]) -> None:
    async with db.session() as session:
        for persona_id in {from_global_id(i, "Persona") for i in persona_ids(results) if i}:
            stored = await rollups.stored(session, org.id, persona_id)
            assert stored == await rollups.recompute(session, org.id, persona_id)
            deltas = await session.execute(
                select(col(PointsEntry.delta), col(PointsEntry.balance_after))
                .where(col(PointsEntry.org_id) == org.id, col(PointsEntry.persona_id) == persona_id)
                .order_by(col(PointsEntry.created_at), col(PointsEntry.id))
            )
            running = 0
            for delta, balance_after in deltas.all():
                running += delta
                assert balance_after == running
            assert stored.figures["points_balance"] == running


async def test_a_replayed_batch_of_orders_is_all_duplicate_and_changes_nothing(
    operator_client: GraphQLClient, db: Any, org: Organization
) -> None:
    await set_loyalty(db, org, points_per_dollar_milli=1000, points_per_order=2)
    phones = [f"+1415555{i:04d}" for i in range(4)]
    await ingest(operator_client, *({"phone": p, "loyaltyMember": i % 2 == 0} for i, p in enumerate(phones)))
    orders = [ticket(f"t-{n}", {"phone": phones[n % 4]}, f"{n + 1}.50") for n in range(12)]
    first = await record(operator_client, *orders)
    before = await cards_of(operator_client, persona_ids(first))

    replayed = await record(operator_client, *orders)

    assert outcomes(first) == ["RECORDED"] * 12
    assert outcomes(replayed) == ["DUPLICATE"] * 12
    assert [r["order"] for r in replayed] == [r["order"] for r in first]
    assert persona_ids(replayed) == persona_ids(first)
    assert await cards_of(operator_client, persona_ids(first)) == before
    await assert_rollups_and_ledgers_hold(db, org, first)


OUTCOMES_OF_CONTACTS = (
    "mutation ($input: IngestContactsInput!) { ingestContacts(input: $input) { results { outcome } } }"
)
OUTCOMES_OF_ORDERS = "mutation ($input: RecordOrdersInput!) { recordOrders(input: $input) { results { outcome } } }"


async def test_a_batch_takes_the_same_statements_whatever_its_size(
    operator_client: GraphQLClient, statements: Any
) -> None:
    def contact(i: int) -> dict[str, Any]:
        return {
            "phone": f"+1415555{i:04d}",
            "email": f"c{i}@example.com",
            "loyaltyMember": True,
            "attributes": [{"key": "budtender", "value": "Sam"}],
            "tags": ["vip"],
            "consents": [{"channel": "TEXT", "status": "OPTED_IN", "source": "INTEGRATION"}],
        }

    async def count(document: str, variables: dict[str, Any], expected: str) -> int:
        statements.count, statements.active = 0, True
        data = await operator_client.data(document, variables)
        statements.active = False
        assert {r["outcome"] for r in next(iter(data.values()))["results"]} == {expected}
        return int(statements.count)

    contacts = [
        await count(
            OUTCOMES_OF_CONTACTS, {"input": {"source": "pos", "contacts": [contact(i) for i in rows]}}, "CREATED"
        )
        for rows in (range(5), range(10, 20), range(20, 60))
    ][1:]  # the first request of a client also reads its key
    orders = [
        await count(
            OUTCOMES_OF_ORDERS,
            {"input": {"orders": [ticket(f"t-{n}", {"phone": f"+1415555{10 + n % 50:04d}"}) for n in rows]}},
            "RECORDED",
        )
        for rows in (range(10), range(10, 50))
    ]

    # A new block of persona numbers (PostgreSQL) may be claimed by one batch and not the other.
    assert contacts[1] - 1 <= contacts[0] <= contacts[1] + 1, contacts
    assert orders[0] == orders[1], orders
    assert max(contacts + orders) <= 25, (contacts, orders)


PHONES = itertools.count(2000)
baskets = st.lists(
    st.tuples(
        st.integers(0, 3),  # which of four customers
        st.integers(0, 30_000),  # subtotal in cents
        st.booleans(),  # enrolls the customer
        st.lists(st.sampled_from(["Blue Dream", "Camino Gummies", "Pod 1g"]), min_size=0, max_size=3),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(baskets=baskets)
async def test_a_batch_of_orders_keeps_rollups_and_ledgers_exact(
    operator_client: GraphQLClient, db: Any, org: Organization, baskets: list[tuple[int, int, bool, list[str]]]
) -> None:
    phones = [f"+1415555{next(PHONES):04d}" for _ in range(4)]
    orders = [
        {
            **ticket(f"p-{phones[0]}-{n}", {"phone": phones[who], "loyaltyMember": enrolls or None}),
            "subtotal": str(Decimal(cents).scaleb(-2)),
            "total": str(Decimal(cents).scaleb(-2)),
            "tax": "0.00",
            "lines": [{"product": p, "quantity": 1, "unitPrice": "1.00"} for p in products],
        }
        for n, (who, cents, enrolls, products) in enumerate(baskets)
    ]

    # In two batches: the second's ledger entries run on from the balances the first left.
    half = len(orders) // 2
    results = await record(operator_client, *orders[:half]) if half else []
    results += await record(operator_client, *orders[half:])

    assert outcomes(results) == ["RECORDED"] * len(orders)
    await assert_rollups_and_ledgers_hold(db, org, results)
