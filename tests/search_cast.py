"""The personas the search, audience and export tests look for, made through
the write paths the API uses (ingestion, record_order) and, for archive,
erase and merge, through the GraphQL mutations staff use."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from database import Database
from models import Organization, Store
from resolvers.ingest import ConsentData, ContactData
from resolvers.orders import OrderData, record_order
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, days_ago, make_persona

ARCHIVE = """
mutation ($input: PersonaRefInput!) { archivePersona(input: $input) { userErrors { code message } } }
"""
ERASE = """
mutation ($input: PrivacyActionInput!) { requestPrivacyAction(input: $input) { userErrors { code message } } }
"""
SEARCH = """
query ($q: String, $archived: Boolean, $first: Int, $after: String, $last: Int, $before: String) {
  personas(query: $q, includeArchived: $archived, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { fullName } }
    nodes { number fullName }
  }
}
"""


@dataclass
class Cast:
    """Created in this order, so newest first is bob, joann, annabel, ann."""

    ann: MadePersona
    annabel: MadePersona
    joann: MadePersona
    bob: MadePersona
    main_street: Store
    downtown: Store


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


async def make_store(db: Database, org: Organization, name: str) -> Store:
    async with db.session() as session, session.begin():
        store = Store(org_id=org.id, name=name)
        session.add(store)
    return store


async def order(
    db: Database, org: Organization, external_id: str, customer: ContactData, placed_at: dt.datetime, **extra: Any
) -> None:
    """An order of $50 + $5 tax unless told otherwise."""
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        data = OrderData(
            external_id=external_id,
            source="test-pos",
            customer=customer,
            placed_at=placed_at,
            subtotal=extra.pop("subtotal", Decimal(50)),
            tax=extra.pop("tax", Decimal(5)),
            total=extra.pop("total", Decimal(55)),
            **extra,
        )
        result = await record_order(session, loaded, data, actor="test", path=["order"])
    assert result.order is not None, [e.message for e in result.errors]


async def make_cast(db: Database, org: Organization) -> Cast:
    main_street = await make_store(db, org, "Main Street")
    downtown = await make_store(db, org, "Downtown")
    ann = await make_persona(
        db,
        org,
        first_name="Ann",
        last_name="Lee",
        phone="415-555-0101",
        email="Ann@Example.com",
        loyalty_member=True,
        loyalty_signup_at=at("2024-03-10T15:00:00"),
        tags=["VIP"],
        attributes=[("tier", "Gold")],
        consents=[ConsentData("TEXT", "OPTED_IN", "CUSTOMER")],
        favorite_store_id=main_street.id,
    )
    annabel = await make_persona(
        db,
        org,
        source="RAW_FILE",
        first_name="Annabel",
        last_name="Leeds",
        email="annabel@example.com",
        tags=["big spender"],
        attributes=[("tier", "gold plus")],
        consents=[ConsentData("EMAIL", "OPTED_OUT", "IMPORT")],
    )
    joann = await make_persona(
        db,
        org,
        source="LOYALTY",
        first_name="Joann",
        last_name="Kaleel",
        phone="415-555-0103",
        loyalty_member=True,
        loyalty_signup_at=at("2025-06-01T12:00:00"),
        consents=[ConsentData("TEXT", "OPTED_OUT", "CUSTOMER")],
    )
    bob = await make_persona(
        db,
        org,
        first_name="Bob",
        last_name="Stone",
        phone="415-555-0104",
        email="bob@example.com",
        loyalty_member=True,
        loyalty_signup_at=at("2023-01-05T09:00:00"),
    )
    # Ann: one $20 order 100 days ago. Bob: three $50 orders at Downtown, the last 10 days ago.
    await order(
        db,
        org,
        "a-1",
        ContactData(email="ann@example.com"),
        days_ago(100),
        subtotal=Decimal(20),
        tax=Decimal(2),
        total=Decimal(22),
    )
    for n, days in enumerate((30, 20, 10)):
        await order(db, org, f"b-{n}", ContactData(phone="4155550104"), days_ago(days), store_id=downtown.id)
    return Cast(ann, annabel, joann, bob, main_street, downtown)


async def names(client: GraphQLClient, query: str | None, **variables: Any) -> list[str]:
    data = await client.data(SEARCH, {"q": query, **variables})
    return [n["fullName"] for n in data["personas"]["nodes"]]


async def archive(client: GraphQLClient, persona: MadePersona) -> None:
    payload = (await client.data(ARCHIVE, {"input": {"personaId": persona.gid}}))["archivePersona"]
    assert payload["userErrors"] == []


async def erase(client: GraphQLClient, *, phone: str | None = None, email: str | None = None) -> None:
    variables = {"input": {"phone": phone, "email": email, "action": "DELETE_DATA"}}
    payload = (await client.data(ERASE, variables))["requestPrivacyAction"]
    assert payload["userErrors"] == []


async def merged_pair(db: Database, org: Organization, first_name: str, phone: str, email: str) -> MadePersona:
    """Two personas (one by phone, one by email) that a contact with both merges; returns the one merged away."""
    await make_persona(db, org, first_name=first_name, last_name="Survivor", phone=phone)
    loser = await make_persona(db, org, first_name=first_name, last_name="Merged", email=email)
    await make_persona(db, org, phone=phone, email=email)
    return loser
