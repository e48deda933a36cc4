"""Privacy requests by staff: opt-out and suppression, input, permissions and the request list.

Erasure has its own module (test_privacy.py); the public page has
test_privacy_page.py and test_privacy_browser.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from database import Database
from models import Consent, IdentityKey, Organization, Persona, PrivacyRequest, Suppression
from models.enums import Channel
from permissions.matrix import ROLE_PERMISSIONS, Permission, Role
from resolvers.consent import contact_hash
from resolvers.ingest import ConsentData, ContactData, IngestOutcome, ingest_one
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import make_persona

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
PHONE, EMAIL, FIRST = "+15415550123", "zebulon.q@example.com", "Zebulon"


def consent(channel: str, status: str, source: str) -> ConsentData:
    return ConsentData(channel=channel, status=status, source=source)


async def ingest(db: Database, org: Organization, contact: ContactData, source: str = "test-pos") -> Any:
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        result = await ingest_one(session, loaded, source, contact, actor="test", path=["contact"])
    assert result.outcome is not IngestOutcome.REJECTED, [e.message for e in result.errors]
    return result


async def rows(db: Database, model: type[SQLModel], **where: Any) -> list[Any]:
    async with db.session() as session:
        stmt = select(model).where(*(getattr(model, k) == v for k, v in where.items()))
        return list((await session.execute(stmt)).scalars())


# Opt-out and suppression ------------------------------------------------------------


async def consents_of(db: Database, org: Organization, persona_id: uuid.UUID) -> dict[str, tuple[str, str]]:
    return {c.channel: (c.status, c.source) for c in await rows(db, Consent, org_id=org.id, persona_id=persona_id)}


async def test_opt_out_closes_every_channel_and_suppression_holds_against_a_replayed_import(
    db: Database, org: Organization, manager_client: GraphQLClient
) -> None:
    contact = ContactData(
        phone=PHONE,
        email=EMAIL,
        consents=[consent("TEXT", "OPTED_IN", "IMPORT"), consent("EMAIL", "OPTED_IN", "IMPORT")],
    )
    persona = (await ingest(db, org, contact, source="RAW_FILE")).persona

    body = await manager_client.data(REQUEST, {"input": {"email": f"  {EMAIL.title()} ", "action": "OPT_OUT"}})

    assert body["requestPrivacyAction"]["request"]["personasAffected"] == 1
    opted_out = {channel.value: ("OPTED_OUT", "PRIVACY_REQUEST") for channel in Channel}
    assert await consents_of(db, org, persona.id) == opted_out
    (row,) = await rows(db, Persona, org_id=org.id, id=persona.id)
    assert row.sms_opt_out_at is not None
    suppressed = {s.contact_hash for s in await rows(db, Suppression, org_id=org.id)}
    assert suppressed == {contact_hash(PHONE), contact_hash(EMAIL)}

    # The same file, imported again, and an integration: neither opts them back in.
    await ingest(db, org, contact, source="RAW_FILE")
    replay = ContactData(
        phone=PHONE,
        consents=[consent("TEXT", "OPTED_IN", "INTEGRATION"), consent("LOYALTY", "OPTED_IN", "IMPORT")],
    )
    await ingest(db, org, replay, source="pos")
    assert await consents_of(db, org, persona.id) == opted_out

    # The customer's own consent does.
    await ingest(db, org, ContactData(phone=PHONE, consents=[consent("TEXT", "OPTED_IN", "CUSTOMER")]))
    assert (await consents_of(db, org, persona.id))["TEXT"] == ("OPTED_IN", "CUSTOMER")
    assert (await consents_of(db, org, persona.id))["EMAIL"] == ("OPTED_OUT", "PRIVACY_REQUEST")


async def test_opt_out_of_an_unknown_contact_suppresses_a_persona_imported_later(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    body = await owner_client.data(REQUEST, {"input": {"phone": PHONE, "action": "OPT_OUT"}})
    assert body["requestPrivacyAction"]["request"]["personasAffected"] == 0

    created = await ingest(db, org, ContactData(phone=PHONE, consents=[consent("TEXT", "OPTED_IN", "IMPORT")]))

    assert created.outcome is IngestOutcome.CREATED
    assert "TEXT" not in await consents_of(db, org, created.persona.id)
    await ingest(db, org, ContactData(phone=PHONE, consents=[consent("TEXT", "OPTED_IN", "CUSTOMER")]))
    assert (await consents_of(db, org, created.persona.id))["TEXT"] == ("OPTED_IN", "CUSTOMER")


async def test_a_request_touches_only_its_own_organization(
    db: Database, org: Organization, other_org: Organization, owner_client: GraphQLClient
) -> None:
    ours = await make_persona(db, org, phone=PHONE, first_name=FIRST)
    theirs = await make_persona(db, other_org, phone=PHONE, first_name=FIRST)

    await owner_client.data(REQUEST, {"input": {"phone": PHONE, "action": "DELETE_DATA"}})

    (erased,) = await rows(db, Persona, id=ours.id)
    (kept,) = await rows(db, Persona, id=theirs.id)
    assert (erased.first_name, erased.erased_at is not None) == (None, True)
    assert (kept.first_name, kept.phone, kept.erased_at) == (FIRST, PHONE, None)


# Input, permissions and the list ---------------------------------------------------


@pytest.mark.parametrize(
    ("given", "code", "field"),
    [
        ({}, "NO_CONTACT_INFO", ["input"]),
        ({"phone": "", "email": " "}, "NO_CONTACT_INFO", ["input"]),
        ({"phone": "12"}, "INVALID_PHONE", ["input", "phone"]),
        ({"email": "not-an-email"}, "INVALID_EMAIL", ["input", "email"]),
    ],
)
async def test_a_request_without_a_usable_contact_is_refused(
    db: Database, owner_client: GraphQLClient, given: dict[str, str], code: str, field: list[str]
) -> None:
    body = await owner_client.data(REQUEST, {"input": {**given, "action": "OPT_OUT"}})

    result = body["requestPrivacyAction"]
    assert result["request"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [(code, field)]
    assert await rows(db, PrivacyRequest) == []


WITHOUT_PRIVACY = [role for role in Role if Permission.PRIVACY_REQUESTS not in ROLE_PERMISSIONS[role]]


@pytest.mark.parametrize("role", WITHOUT_PRIVACY)
async def test_roles_without_privacy_requests_are_forbidden_and_nothing_is_written(
    db: Database, org: Organization, client_for: ClientFactory, role: Role
) -> None:
    persona = await make_persona(db, org, phone=PHONE, first_name=FIRST)
    client = await client_for(role)

    body = await client.data(REQUEST, {"input": {"phone": PHONE, "action": "DELETE_DATA"}})
    listed = await client.execute(REQUESTS)

    assert body["requestPrivacyAction"]["request"] is None
    assert [e["code"] for e in body["requestPrivacyAction"]["userErrors"]] == ["FORBIDDEN"]
    assert listed["data"]["privacyRequests"] is None
    assert [(e["extensions"]["code"], e["path"]) for e in listed["errors"]] == [("FORBIDDEN", ["privacyRequests"])]
    assert await rows(db, PrivacyRequest) == []
    assert await rows(db, Suppression) == []
    (row,) = await rows(db, Persona, id=persona.id)
    assert (row.first_name, row.erased_at) == (FIRST, None)
    assert len(await rows(db, IdentityKey, org_id=org.id)) == 1


async def test_privacy_requests_list_newest_first_in_pages(
    db: Database, org: Organization, owner_client: GraphQLClient, manager_client: GraphQLClient
) -> None:
    made = []
    for contact in ({"phone": PHONE}, {"email": EMAIL}, {"phone": PHONE, "email": EMAIL}):
        body = await owner_client.data(REQUEST, {"input": {**contact, "action": "OPT_OUT"}})
        made.append(body["requestPrivacyAction"]["request"]["id"])

    first = (await manager_client.data(REQUESTS, {"first": 2}))["privacyRequests"]
    rest = (await manager_client.data(REQUESTS, {"first": 2, "after": first["pageInfo"]["endCursor"]}))[
        "privacyRequests"
    ]
    back = (await manager_client.data(REQUESTS, {"last": 1}))["privacyRequests"]

    assert first["totalCount"] == 3
    assert [n["id"] for n in first["nodes"]] == made[::-1][:2]
    assert first["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in rest["edges"]] == made[:1]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert [n["id"] for n in back["nodes"]] == made[:1]
    assert {e["node"]["action"] for e in first["edges"]} == {"OPT_OUT"}
    assert {e["node"]["status"] for e in first["edges"]} == {"COMPLETED"}
    stored = await rows(db, PrivacyRequest, org_id=org.id)
    assert {r.requested_by for r in stored} == {"test OWNER"}
    assert all(PHONE not in r.contact_hashes and EMAIL not in r.contact_hashes for r in stored)
