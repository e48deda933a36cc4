"""ingestContacts through GraphQL: identity resolution (one person in several formats is one
persona), what a new contact carries, automatic merges that lose nothing, legacy points imported
once, archived personas, tenancy, the parallel ingest of one new customer, and the bounded number
of statements a batch takes."""

from __future__ import annotations

import asyncio
from typing import Any

from models import Organization
from permissions.matrix import Role
from tests.conftest import ClientFactory, GraphQLClient
from tests.ingest_support import ANN_EMAIL, ANN_PHONE, BEA_EMAIL, CARD, PERSONAS, ingest, outcomes

RECORD_ORDERS = """
mutation ($input: RecordOrdersInput!) {
  recordOrders(input: $input) { results { outcome userErrors { field code } } }
}
"""
ARCHIVE = """
mutation ($id: ID!) { archivePersona(input: {personaId: $id}) { persona { archivedAt } userErrors { code } } }
"""
PERSONA = f"query ($id: ID!) {{ persona(id: $id) {{ {CARD} }} }}"


def order(external_id: str, phone: str, subtotal: str = "10.00") -> dict[str, Any]:
    return {
        "externalId": external_id,
        "source": "acme-pos",
        "customer": {"phone": phone},
        "placedAt": "2025-03-01T18:30:00Z",
        "subtotal": subtotal,
        "tax": "1.50",
        "total": str(float(subtotal) + 1.5),
        "lines": [
            {
                "product": "Blue Dream 3.5g",
                "brand": "Stiiizy",
                "category": "Flower",
                "quantity": 1,
                "unitPrice": subtotal,
            }
        ],
    }


async def test_one_person_in_three_phone_formats_and_two_email_casings_is_one_persona(
    operator_client: GraphQLClient,
) -> None:
    results = await ingest(
        operator_client,
        {"phone": "(415) 867-5309", "firstName": "Ann"},
        {"phone": "415.867.5309", "email": "Ann@Example.COM"},
        {"phone": "+1 415 867 5309", "email": "  ann@example.com ", "lastName": "Lee"},
    )

    assert outcomes(results) == ["CREATED", "UPDATED", "UPDATED"]
    assert len({r["persona"]["id"] for r in results}) == 1
    persona = results[-1]["persona"]
    assert (persona["phone"], persona["email"]) == ("+14158675309", "ann@example.com")
    assert (persona["firstName"], persona["lastName"]) == ("Ann", "Lee")
    assert persona["sourcedFrom"] == {"kind": "INTEGRATION", "integration": "acme-pos"}
    assert (await operator_client.data(PERSONAS))["personas"]["totalCount"] == 1


async def test_a_new_contact_carries_its_attributes_tags_consents_and_loyalty(operator_client: GraphQLClient) -> None:
    (result,) = await ingest(
        operator_client,
        {
            "sourceId": "pos-77",
            "phone": ANN_PHONE,
            "birthday": "1990-04-20",
            "loyaltyMember": True,
            "attributes": [{"key": "budtender", "value": "Sam"}],
            "tags": ["vip", " vip ", "medical"],
            "consents": [
                {"channel": "TEXT", "status": "OPTED_IN", "source": "INTEGRATION"},
                {"channel": "EMAIL", "status": "OPTED_OUT", "source": "INTEGRATION"},
            ],
        },
    )

    persona = result["persona"]
    assert result["outcome"] == "CREATED"
    assert persona["loyaltyMember"] is True
    assert persona["birthday"] == "1990-04-20"
    assert persona["customAttributes"] == [{"key": "budtender", "value": "Sam", "source": "POS_GROUP"}]
    assert sorted(persona["tags"]) == ["medical", "vip"]
    statuses = {o["channel"]: (o["status"], o["source"]) for o in persona["optIns"]}
    assert statuses["TEXT"] == ("OPTED_IN", "INTEGRATION")
    assert statuses["EMAIL"] == ("OPTED_OUT", "INTEGRATION")
    assert statuses["VOICE_DROP"] == ("UNKNOWN", None)


async def test_phone_of_one_persona_and_email_of_another_merges_them_losing_nothing(
    operator_client: GraphQLClient,
) -> None:
    # Given Ann (phone) and, later, Bea (email), each with orders, points, consents and attributes.
    (ann,) = await ingest(
        operator_client,
        {
            "sourceId": "a-1",
            "phone": ANN_PHONE,
            "firstName": "Ann",
            "loyaltyMember": True,
            "legacyPoints": 100,
            "attributes": [{"key": "tier", "value": "gold"}, {"key": "shared", "value": "from ann"}],
            "tags": ["vip"],
            "consents": [{"channel": "TEXT", "status": "OPTED_IN", "source": "INTEGRATION"}],
        },
    )
    (bea,) = await ingest(
        operator_client,
        {
            "sourceId": "b-1",
            "email": BEA_EMAIL,
            "lastName": "Lee",
            "loyaltyMember": True,
            "legacyPoints": 40,
            "attributes": [{"key": "shared", "value": "from bea"}, {"key": "budtender", "value": "Sam"}],
            "tags": ["medical"],
            "consents": [{"channel": "TEXT", "status": "OPTED_OUT", "source": "INTEGRATION"}],
        },
    )
    recorded = await operator_client.data(RECORD_ORDERS, {"input": {"orders": [order("t-1", ANN_PHONE)]}})
    assert outcomes(recorded["recordOrders"]["results"]) == ["RECORDED"]
    bea_order = order("t-2", "")
    bea_order["customer"] = {"email": BEA_EMAIL}
    recorded = await operator_client.data(RECORD_ORDERS, {"input": {"orders": [bea_order]}})
    assert outcomes(recorded["recordOrders"]["results"]) == ["RECORDED"]
    before = {
        r["persona"]["id"]: (await operator_client.data(PERSONA, {"id": r["persona"]["id"]}))["persona"]
        for r in (ann, bea)
    }
    ann_points = before[ann["persona"]["id"]]["rewardPoints"]
    bea_points = before[bea["persona"]["id"]]["rewardPoints"]

    # When a contact arrives with Ann's phone and Bea's email.
    (merged,) = await ingest(operator_client, {"phone": "415-867-5309", "email": "BEA@example.com"})

    # Then Ann, the older, survives with everything of both.
    assert merged["outcome"] == "MERGED"
    survivor = merged["persona"]
    assert survivor["number"] == ann["persona"]["number"]
    assert (survivor["phone"], survivor["email"]) == ("+14158675309", BEA_EMAIL)
    assert (survivor["firstName"], survivor["lastName"]) == ("Ann", "Lee")
    assert survivor["rewardPoints"] == ann_points + bea_points
    assert survivor["pointsOverview"]["legacyImported"] == 140
    assert sorted(o["externalId"] for o in survivor["history"]["orders"]["nodes"]) == ["t-1", "t-2"]
    assert survivor["shoppingHabits"]["salesCount"] == 2
    assert {(a["key"], a["value"]) for a in survivor["customAttributes"]} == {
        ("tier", "gold"),
        ("shared", "from ann"),
        ("budtender", "Sam"),
    }
    assert sorted(survivor["tags"]) == ["medical", "vip"]
    text = next(o for o in survivor["optIns"] if o["channel"] == "TEXT")
    assert text["status"] == "OPTED_OUT", "the most restrictive consent wins"
    (merge,) = survivor["history"]["merges"]["nodes"]
    assert merge["kind"] == "AUTOMATIC"
    assert merge["mergedNumber"] == bea["persona"]["number"]
    assert merge["survivor"]["number"] == ann["persona"]["number"]
    assert merge["reason"] == "matched email bea@example.com"
    tombstone = (await operator_client.data(PERSONA, {"id": bea["persona"]["id"]}))["persona"]
    assert tombstone["mergedInto"] == {"number": ann["persona"]["number"]}

    # And the merged persona's contact now finds the survivor.
    (again,) = await ingest(operator_client, {"email": BEA_EMAIL})
    assert again["outcome"] == "UPDATED"
    assert again["persona"]["number"] == ann["persona"]["number"]


async def test_legacy_points_are_imported_once_per_source_and_source_id(operator_client: GraphQLClient) -> None:
    contact = {"sourceId": "legacy-9", "phone": ANN_PHONE, "loyaltyMember": True, "legacyPoints": 120}

    (first,) = await ingest(operator_client, contact)
    (replayed,) = await ingest(operator_client, contact)
    (again_in_one_batch, _) = await ingest(operator_client, contact, contact)
    (other_source,) = await ingest(operator_client, contact, source="other-pos")

    assert first["persona"]["rewardPoints"] == 120
    assert replayed["outcome"] == "UPDATED"
    assert replayed["persona"]["rewardPoints"] == 120
    assert again_in_one_batch["persona"]["rewardPoints"] == 120
    assert other_source["persona"]["rewardPoints"] == 240, "another system's legacy balance is its own import"
    assert other_source["persona"]["pointsOverview"]["legacyImported"] == 240


async def test_a_matching_contact_attaches_to_an_archived_persona_without_restoring_it(
    operator_client: GraphQLClient, owner_client: GraphQLClient
) -> None:
    (ann,) = await ingest(operator_client, {"phone": ANN_PHONE, "loyaltyMember": True})
    archived = await owner_client.data(ARCHIVE, {"id": ann["persona"]["id"]})
    assert archived["archivePersona"]["userErrors"] == []

    (again,) = await ingest(operator_client, {"phone": ANN_PHONE, "email": ANN_EMAIL, "firstName": "Ann"})

    assert again["outcome"] == "UPDATED"
    assert again["persona"]["number"] == ann["persona"]["number"]
    assert again["persona"]["archivedAt"] is not None
    assert (again["persona"]["email"], again["persona"]["firstName"]) == (ANN_EMAIL, "Ann")


async def test_two_organizations_never_share_a_persona(client_for: ClientFactory, other_org: Organization) -> None:
    ours = await client_for(Role.OPERATOR)
    theirs = await client_for(Role.OPERATOR, other_org)

    (mine,) = await ingest(ours, {"phone": ANN_PHONE})
    (rival,) = await ingest(theirs, {"phone": ANN_PHONE, "email": ANN_EMAIL})
    (mine_again,) = await ingest(ours, {"phone": ANN_PHONE, "email": ANN_EMAIL})

    assert (mine["outcome"], rival["outcome"], mine_again["outcome"]) == ("CREATED", "CREATED", "UPDATED")
    assert mine["persona"]["id"] != rival["persona"]["id"]
    assert mine_again["persona"]["id"] == mine["persona"]["id"]


async def test_eight_parallel_ingests_of_one_new_customer_make_one_persona(client_for: ClientFactory) -> None:
    clients = [await client_for(Role.OPERATOR) for _ in range(8)]
    contact = {"phone": ANN_PHONE, "email": ANN_EMAIL, "firstName": "Ann", "tags": ["vip"]}

    answers = await asyncio.gather(*(ingest(c, contact) for c in clients))

    results = [r for (r,) in answers]
    assert sorted(outcomes(results)) == ["CREATED"] + ["UPDATED"] * 7
    assert len({r["persona"]["id"] for r in results}) == 1
    listed = (await clients[0].data(PERSONAS))["personas"]
    assert listed["totalCount"] == 1
    assert results[0]["persona"]["tags"] == ["vip"]


OUTCOMES = """
mutation ($input: IngestContactsInput!) { ingestContacts(input: $input) { results { outcome } } }
"""


async def test_contacts_take_a_bounded_number_of_statements(operator_client: GraphQLClient, statements: Any) -> None:
    contacts = [
        {
            "phone": f"+1415555{i:04d}",
            "email": f"c{i}@example.com",
            "firstName": "Cal",
            "attributes": [{"key": "budtender", "value": "Sam"}],
            "tags": ["vip"],
            "consents": [
                {"channel": "TEXT", "status": "OPTED_IN", "source": "INTEGRATION"},
                {"channel": "EMAIL", "status": "OPTED_OUT", "source": "INTEGRATION"},
            ],
        }
        for i in range(10)
    ]

    counts = []
    for expected in ("CREATED", "UPDATED"):
        statements.count, statements.active = 0, True
        data = await operator_client.data(OUTCOMES, {"input": {"source": "acme-pos", "contacts": contacts}})
        statements.active = False
        assert {r["outcome"] for r in data["ingestContacts"]["results"]} == {expected}
        counts.append(statements.count)

    # New: a savepoint and its release, the keys' owners, a persona number (SQLite), the persona, its
    # rollup, keys, attributes, tags, one suppression look-up and the consents with their events.
    # Known and unchanged: the savepoint and its release, the owners, the attributes, tags and consents held.
    assert counts[0] <= 13 * len(contacts) + 6, counts
    assert counts[1] <= 6 * len(contacts) + 6, counts
