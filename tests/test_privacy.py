"""Erasure by a staff privacy request (DELETE_DATA): no PII left anywhere, totals unchanged.

Personas, orders and points are made through the write paths the API uses
(ingestion, record_order, post_entry); history rows that have no resolver of
their own here are added as rows. The erasure test proves that no PII is left
by scanning every column of every table, not by asking the API.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import SQLModel, col

from database import Database
from models import (
    AuditEntry,
    CustomAttribute,
    IdentityKey,
    Message,
    Order,
    Organization,
    Persona,
    PersonaAction,
    PersonaRollup,
    PersonaTag,
    PixelEvent,
    PointsEntry,
    SignupSubmission,
    SurveySubmission,
)
from models.enums import PointsEntryKind
from resolvers.ingest import ConsentData, ContactData, IngestOutcome, ingest_one
from resolvers.orders import LineData, OrderData, OrderOutcome, record_order
from resolvers.points import post_entry
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import days_ago

REQUEST = """
mutation ($input: PrivacyActionInput!) {
  requestPrivacyAction(input: $input) {
    request { id action status requestedAt completedAt personasAffected }
    userErrors { field message code }
  }
}
"""
REQUESTS = """
query ($first: Int, $after: String, $last: Int, $before: String) {
  privacyRequests(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id action status personasAffected } }
    nodes { id }
  }
}
"""
PERSONAS = "{ personas(includeArchived: true) { totalCount nodes { id } } }"
SEARCH = "query ($q: String) { personas(query: $q, includeArchived: true) { totalCount } }"

# The person whose data is erased; every value is one the scan looks for.
PHONE = "+15415550123"
EMAIL = "zebulon.q@example.com"
FIRST, LAST = "Zebulon", "Quixotefield"
BIRTHDAY = dt.date(1987, 6, 5)
IP = "203.0.113.77"
BROWSER = "ZebBrowser/9.1 (X11; Linux)"
SIGNATURE = "data:image/png;base64,iVBORw0KGgoZEBSIGNATUREPNGDATA"
SOURCE_ID = "zeb-src-8842"
ATTRIBUTE = "Kush Secret of Zeb"
TAG = "zeb-vip-tag"
PII = [PHONE, PHONE[2:], EMAIL, FIRST, LAST, BIRTHDAY.isoformat(), IP, BROWSER, SIGNATURE, SOURCE_ID, ATTRIBUTE, TAG]


def consent(channel: str, status: str, source: str) -> ConsentData:
    return ConsentData(channel=channel, status=status, source=source)


async def ingest(db: Database, org: Organization, contact: ContactData, source: str = "test-pos") -> Any:
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        result = await ingest_one(session, loaded, source, contact, actor="test", path=["contact"])
    assert result.outcome is not IngestOutcome.REJECTED, [e.message for e in result.errors]
    return result


async def order(db: Database, org: Organization, external_id: str, phone: str, cents: int) -> None:
    price = Decimal(cents) / 100
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        data = OrderData(
            external_id=external_id,
            source="test-pos",
            customer=ContactData(phone=phone),
            placed_at=days_ago(3),
            subtotal=price,
            tax=Decimal("1.00"),
            total=price + 1,
            lines=[LineData(product="Blue Dream", quantity=1, unit_price=price, brand="Acme", category="Flower")],
        )
        result = await record_order(session, loaded, data, actor="test", path=["order"])
    assert result.outcome is OrderOutcome.RECORDED, [e.message for e in result.errors]


@dataclass
class Zebulon:
    id: uuid.UUID
    merged_id: uuid.UUID


async def given_a_persona_with_data_of_every_kind(db: Database, org: Organization) -> Zebulon:
    """Traits, attributes, tags, consents, a sign-up with signature, messages, survey answers,
    pixel events, campaign actions, orders, points, and a duplicate merged into it."""
    first = await ingest(
        db,
        org,
        ContactData(
            source_id=SOURCE_ID,
            phone="(541) 555-0123",
            first_name=FIRST,
            last_name=LAST,
            birthday=BIRTHDAY,
            browser=BROWSER,
            ip_address=IP,
            loyalty_member=True,
            attributes=[("favorite", ATTRIBUTE)],
            tags=[TAG],
            consents=[consent("TEXT", "OPTED_IN", "CUSTOMER"), consent("EMAIL", "OPTED_IN", "IMPORT")],
        ),
    )
    duplicate = await ingest(db, org, ContactData(email=EMAIL, first_name=FIRST, attributes=[("note", ATTRIBUTE)]))
    merged = await ingest(db, org, ContactData(phone=PHONE, email=EMAIL))
    assert merged.outcome is IngestOutcome.MERGED
    zeb = first.persona.id
    await order(db, org, "zeb-1", PHONE, 2500)
    await order(db, org, "zeb-2", PHONE, 4000)
    now = days_ago(1)
    async with db.session() as session, session.begin():
        await session.execute(
            update(Persona).where(col(Persona.org_id) == org.id, col(Persona.id) == zeb).values(wallet_pin="8642")
        )
        await post_entry(
            session,
            org_id=org.id,
            persona_id=zeb,
            kind=PointsEntryKind.STAFF_ADJUSTMENT,
            delta=15,
            note=f"goodwill for {FIRST} {LAST}",
            actor="test",
        )
        common: dict[str, Any] = {"org_id": org.id, "persona_id": zeb, "source": "test"}
        session.add(
            Message(
                **common,
                external_id="m1",
                direction="OUTBOUND",
                channel="SMS",
                body=f"Hi {FIRST}, your order is ready",
                sent_at=now,
            )
        )
        session.add(
            Message(**common, external_id="m2", direction="INBOUND", channel="EMAIL", body=f"from {EMAIL}", sent_at=now)
        )
        session.add(
            SurveySubmission(
                **common,
                external_id="s1",
                survey_name="About you",
                status="COMPLETE",
                answers=[{"question": "Your name?", "answer": f"{FIRST} {LAST}"}],
                submitted_at=now,
            )
        )
        session.add(
            PersonaAction(**common, external_id="a1", kind="CLICKED", detail=f"link for {EMAIL}", occurred_at=now)
        )
        session.add(
            PixelEvent(
                **common,
                external_id="p1",
                site="acme.test",
                event="view",
                url=f"https://acme.test/?u={FIRST}",
                occurred_at=now,
            )
        )
        session.add(
            SignupSubmission(
                org_id=org.id,
                persona_id=zeb,
                form_name="Join the club",
                url=f"https://acme.test/join?email={EMAIL}",
                ip_address=IP,
                user_agent=BROWSER,
                signature=SIGNATURE,
            )
        )
    return Zebulon(id=zeb, merged_id=duplicate.persona.id)


async def pii_left(db: Database) -> dict[str, list[str]]:
    """Each PII value still found anywhere in the database -> the table.column holding it."""
    found: dict[str, list[str]] = {}
    async with db.read() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                for column, value in row._mapping.items():
                    if value is None:
                        continue
                    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
                    for needle in PII:
                        if needle.lower() in text.lower():
                            found.setdefault(needle, []).append(f"{table.name}.{column}")
    return found


async def totals(db: Database, org: Organization) -> tuple[int, int, int, int]:
    async with db.read() as conn:
        orders = (
            await conn.execute(
                select(func.count(), func.sum(col(Order.total_cents)), func.sum(col(Order.subtotal_cents))).where(
                    col(Order.org_id) == org.id
                )
            )
        ).one()
        points = (
            await conn.execute(select(func.sum(col(PointsEntry.delta))).where(col(PointsEntry.org_id) == org.id))
        ).scalar_one()
    return int(orders[0]), int(orders[1]), int(orders[2]), int(points)


async def rows(db: Database, model: type[SQLModel], **where: Any) -> list[Any]:
    async with db.session() as session:
        stmt = select(model).where(*(getattr(model, k) == v for k, v in where.items()))
        return list((await session.execute(stmt)).scalars())


# Erasure -----------------------------------------------------------------------------


async def test_erasure_leaves_no_pii_in_any_table_and_store_totals_unchanged(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    zeb = await given_a_persona_with_data_of_every_kind(db, org)
    assert set(await pii_left(db)) == set(PII), "the scan must see every value before the erasure"
    before = await totals(db, org)

    body = await owner_client.data(REQUEST, {"input": {"phone": "541.555.0123", "action": "DELETE_DATA"}})

    result = body["requestPrivacyAction"]
    assert result["userErrors"] == []
    assert result["request"]["action"] == "DELETE_DATA"
    assert result["request"]["status"] == "COMPLETED"
    assert result["request"]["personasAffected"] == 1
    assert result["request"]["completedAt"] is not None
    assert await pii_left(db) == {}
    assert await totals(db, org) == before
    (persona,) = await rows(db, Persona, org_id=org.id, id=zeb.id)
    assert persona.erased_at is not None
    assert persona.wallet_pin is None
    (tombstone,) = await rows(db, Persona, org_id=org.id, id=zeb.merged_id)
    assert tombstone.erased_at is not None
    for model in (IdentityKey, CustomAttribute, PersonaTag, PixelEvent):
        assert await rows(db, model, org_id=org.id) == [], model.__name__
    assert [m.body for m in await rows(db, Message, org_id=org.id)] == ["", ""]
    assert [s.answers for s in await rows(db, SurveySubmission, org_id=org.id)] == [[]]
    (signup,) = await rows(db, SignupSubmission, org_id=org.id)
    assert (signup.signature, signup.ip_address, signup.user_agent) == (None, None, None)
    assert len(await rows(db, Order, org_id=org.id, persona_id=zeb.id)) == 2
    assert (await owner_client.data(PERSONAS))["personas"]["totalCount"] == 0


async def test_erasure_is_audited_with_ids_only(db: Database, org: Organization, owner_client: GraphQLClient) -> None:
    zeb = await given_a_persona_with_data_of_every_kind(db, org)

    body = await owner_client.data(REQUEST, {"input": {"email": EMAIL.upper(), "action": "DELETE_DATA"}})

    (entry,) = await rows(db, AuditEntry, org_id=org.id, operation="requestPrivacyAction")
    assert entry.outcome == "OK"
    assert entry.target_ids.split() == [body["requestPrivacyAction"]["request"]["id"], to_global_id("Persona", zeb.id)]
    assert await pii_left(db) == {}


async def test_search_and_export_find_nothing_of_an_erased_persona(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    await given_a_persona_with_data_of_every_kind(db, org)
    searches = [PHONE, "(541) 555-0123", EMAIL, f'"{FIRST} {LAST}"', FIRST, LAST]
    for query in searches:
        assert (await owner_client.data(SEARCH, {"q": query}))["personas"]["totalCount"] == 1, query

    await owner_client.data(REQUEST, {"input": {"phone": PHONE, "action": "DELETE_DATA"}})

    for query in searches:
        assert (await owner_client.data(SEARCH, {"q": query}))["personas"]["totalCount"] == 0, query
    export = await owner_client.http.get("/export/personas.csv", params={"includeArchived": "true"})
    assert export.status_code == 200
    assert len(export.text.strip().splitlines()) == 1  # the header alone
    assert [value for value in PII if value.lower() in export.text.lower()] == []


async def test_a_later_pos_contact_with_the_same_phone_is_a_fresh_persona(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    zeb = await given_a_persona_with_data_of_every_kind(db, org)
    await owner_client.data(REQUEST, {"input": {"phone": PHONE, "email": EMAIL, "action": "DELETE_DATA"}})

    again = await ingest(db, org, ContactData(phone="541-555-0123"))

    assert again.outcome is IngestOutcome.CREATED
    fresh = again.persona.id
    assert fresh not in (zeb.id, zeb.merged_id)
    assert await rows(db, Order, org_id=org.id, persona_id=fresh) == []
    assert await rows(db, PointsEntry, org_id=org.id, persona_id=fresh) == []
    assert await rows(db, CustomAttribute, org_id=org.id, persona_id=fresh) == []
    (rollup,) = await rows(db, PersonaRollup, org_id=org.id, persona_id=fresh)
    assert (rollup.points_balance, rollup.orders_count, rollup.spend_total_cents) == (0, 0, 0)
    (persona,) = await rows(db, Persona, org_id=org.id, id=fresh)
    assert (persona.first_name, persona.phone, persona.erased_at) == (None, PHONE, None)
    listed = (await owner_client.data(PERSONAS))["personas"]
    assert [n["id"] for n in listed["nodes"]] == [to_global_id("Persona", fresh)]
