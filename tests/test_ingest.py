"""ingestContacts through GraphQL: identity resolution, automatic merges,
placeholders, row errors with their input paths, legacy points, consents,
archived personas, tenancy and the parallel ingest of one new customer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models import Organization
from permissions.matrix import Role
from schema.ids import to_global_id
from tests.conftest import ClientFactory, GraphQLClient

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"
BEA_PHONE, BEA_EMAIL = "(646) 783-0134", "bea@example.com"

CARD = """
    id number firstName lastName email phone birthday archivedAt loyaltyMember mergedInto { number }
    sourcedFrom { kind integration }
    rewardPoints
    pointsOverview { legacyImported }
    customAttributes { key value source }
    tags
    optIns { channel status source }
    shoppingHabits { salesCount }
    history {
      orders { totalCount nodes { externalId } }
      merges { nodes { kind reason mergedNumber survivor { number } } }
    }
"""
INGEST = f"""
mutation ($input: IngestContactsInput!) {{
  ingestContacts(input: $input) {{
    results {{ index outcome persona {{ {CARD} }} userErrors {{ field message code }} }}
    userErrors {{ field message code }}
  }}
}}
"""
RECORD_ORDERS = """
mutation ($input: RecordOrdersInput!) {
  recordOrders(input: $input) { results { outcome userErrors { field code } } }
}
"""
ARCHIVE = """
mutation ($id: ID!) { archivePersona(input: {personaId: $id}) { persona { archivedAt } userErrors { code } } }
"""
PERSONAS = "query { personas(includeArchived: true) { totalCount nodes { number } } }"
PERSONA = f"query ($id: ID!) {{ persona(id: $id) {{ {CARD} }} }}"


async def ingest(client: GraphQLClient, *contacts: dict[str, Any], source: str = "acme-pos") -> list[dict[str, Any]]:
    data = await client.data(INGEST, {"input": {"source": source, "contacts": list(contacts)}})
    payload = data["ingestContacts"]
    assert payload["userErrors"] == []
    results: list[dict[str, Any]] = payload["results"]
    assert [r["index"] for r in results] == list(range(len(contacts)))
    return results


def outcomes(results: list[dict[str, Any]]) -> list[str]:
    return [r["outcome"] for r in results]


def errors_of(result: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in result["userErrors"]]


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


@pytest.mark.parametrize(
    "contact",
    [
        {"phone": "555-555-5555"},
        {"phone": "(111) 111-1111"},
        {"phone": "0000000000"},
        {"email": "none@none.com"},
        {"email": "noemail@gmail.com"},
        {"phone": "999-999-9999", "email": "NoEmail@Example.com", "firstName": "Walk-in"},
    ],
)
async def test_a_contact_with_only_placeholders_is_refused(
    operator_client: GraphQLClient, contact: dict[str, Any]
) -> None:
    (result,) = await ingest(operator_client, contact)

    assert result["outcome"] == "REJECTED"
    assert result["persona"] is None
    assert errors_of(result) == [("NO_CONTACT_INFO", ["input", "contacts", "0"])]


async def test_the_placeholders_an_operator_adds_count_as_none_from_the_next_request(
    operator_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the front desk's own stand-ins, set while the server runs
    contacts = ({"email": "FrontDesk@Shop.example"}, {"email": "nobody@elsewhere.example"}, {"phone": BEA_PHONE})
    monkeypatch.setenv("PERSONAGRAPH_PLACEHOLDERS", "frontdesk@shop.example, nobody@, 6467830134")
    # Then an address, a local part at any domain and a phone's digits named there make no customer
    assert outcomes(await ingest(operator_client, *contacts)) == ["REJECTED"] * 3
    # And once the setting changes back, the same contacts are customers
    monkeypatch.delenv("PERSONAGRAPH_PLACEHOLDERS")
    assert outcomes(await ingest(operator_client, *contacts)) == ["CREATED"] * 3


async def test_placeholders_are_never_identity_keys(operator_client: GraphQLClient) -> None:
    results = await ingest(
        operator_client,
        {"phone": ANN_PHONE, "email": "noemail@example.com"},
        {"phone": BEA_PHONE, "email": "noemail@example.com"},
        {"phone": "555-555-5555", "email": BEA_EMAIL},
        {"phone": "555-555-5555", "email": ANN_EMAIL},
    )

    assert outcomes(results) == ["CREATED"] * 4
    personas = [r["persona"] for r in results]
    assert len({p["number"] for p in personas}) == 4, "a shared placeholder never makes two customers one"
    assert [p["email"] for p in personas] == [None, None, BEA_EMAIL, ANN_EMAIL]
    assert [p["phone"] for p in personas] == ["+14158675309", "+16467830134", None, None]


async def test_invalid_phones_and_emails_are_row_errors_at_their_paths(operator_client: GraphQLClient) -> None:
    results = await ingest(
        operator_client,
        {"phone": ANN_PHONE},
        {"phone": "12345", "email": BEA_EMAIL},
        {"phone": BEA_PHONE, "email": "bea@@example"},
        {"phone": "call me", "email": "no at sign"},
        {"email": "cal@example.com"},
    )

    assert outcomes(results) == ["CREATED", "REJECTED", "REJECTED", "REJECTED", "CREATED"]
    assert errors_of(results[1]) == [("INVALID_PHONE", ["input", "contacts", "1", "phone"])]
    assert errors_of(results[2]) == [("INVALID_EMAIL", ["input", "contacts", "2", "email"])]
    assert errors_of(results[3]) == [
        ("INVALID_PHONE", ["input", "contacts", "3", "phone"]),
        ("INVALID_EMAIL", ["input", "contacts", "3", "email"]),
    ]
    assert all(e["message"] for r in results for e in r["userErrors"])
    # Nothing of a rejected row was written: Bea's valid email of row 1 made no persona.
    assert (await operator_client.data(PERSONAS))["personas"]["totalCount"] == 2


async def test_a_contact_without_phone_or_email_is_refused(operator_client: GraphQLClient) -> None:
    (result,) = await ingest(operator_client, {"firstName": "Ann", "lastName": "Lee", "sourceId": "x"})

    assert errors_of(result) == [("NO_CONTACT_INFO", ["input", "contacts", "0"])]
    assert (await operator_client.data(PERSONAS))["personas"]["totalCount"] == 0


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


async def test_legacy_points_need_a_source_id_and_may_not_be_negative(operator_client: GraphQLClient) -> None:
    results = await ingest(
        operator_client,
        {"phone": ANN_PHONE, "legacyPoints": 50},
        {"phone": BEA_PHONE, "sourceId": "b", "legacyPoints": -5},
    )

    assert errors_of(results[0]) == [("INVALID", ["input", "contacts", "0", "legacyPoints"])]
    assert errors_of(results[1]) == [("INVALID", ["input", "contacts", "1", "legacyPoints"])]


@pytest.mark.parametrize("channel", ["MOBILE_PUSH", "BROWSER_PUSH"])
async def test_push_opt_ins_come_only_from_the_device(operator_client: GraphQLClient, channel: str) -> None:
    results = await ingest(
        operator_client,
        {"phone": ANN_PHONE, "consents": [{"channel": channel, "status": "OPTED_IN", "source": "INTEGRATION"}]},
        {"phone": BEA_PHONE, "consents": [{"channel": channel, "status": "OPTED_IN", "source": "DEVICE"}]},
        {"email": BEA_EMAIL, "consents": [{"channel": channel, "status": "OPTED_OUT", "source": "STAFF"}]},
    )

    assert outcomes(results) == ["REJECTED", "CREATED", "CREATED"]
    assert errors_of(results[0]) == [("CONSENT_REQUIRES_DEVICE", ["input", "contacts", "0", "consents", "0", "status"])]
    push = next(o for o in results[1]["persona"]["optIns"] if o["channel"] == channel)
    assert (push["status"], push["source"]) == ("OPTED_IN", "DEVICE")


async def test_field_errors_name_their_input_paths(operator_client: GraphQLClient, db: Any, org: Organization) -> None:
    store_of_nobody = to_global_id("Store", org.id)
    results = await ingest(
        operator_client,
        {"phone": ANN_PHONE, "favoriteStoreId": "not-an-id"},
        {"phone": ANN_PHONE, "favoriteStoreId": store_of_nobody},
        {"phone": ANN_PHONE, "firstName": "x" * 201, "attributes": [{"key": " ", "value": "v"}], "tags": ["t" * 201]},
        {"phone": ANN_PHONE, "loyaltySignupAt": "2024-05-01T10:00:00", "birthday": "2999-01-01"},
        {"phone": ANN_PHONE},
    )

    path = ["input", "contacts"]
    assert outcomes(results) == ["REJECTED", "REJECTED", "REJECTED", "REJECTED", "CREATED"]
    assert errors_of(results[0]) == [("INVALID", [*path, "0", "favoriteStoreId"])]
    assert errors_of(results[1]) == [("NOT_FOUND", [*path, "1", "favoriteStoreId"])]
    assert errors_of(results[2]) == [
        ("INVALID", [*path, "2", "firstName"]),
        ("INVALID", [*path, "2", "attributes", "0", "key"]),
        ("INVALID", [*path, "2", "tags", "0"]),
    ]
    assert errors_of(results[3]) == [
        ("INVALID", [*path, "3", "loyaltySignupAt"]),
        ("INVALID", [*path, "3", "birthday"]),
    ]


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


async def test_more_than_a_thousand_contacts_are_refused_whole(operator_client: GraphQLClient) -> None:
    contacts = [{"phone": f"+1415555{i:04d}"} for i in range(1001)]

    data = await operator_client.data(INGEST, {"input": {"source": "acme-pos", "contacts": contacts}})

    payload = data["ingestContacts"]
    assert payload["results"] == []
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("TOO_MANY", ["input", "contacts"])]
    assert (await operator_client.data(PERSONAS))["personas"]["totalCount"] == 0


async def test_an_empty_source_is_refused(operator_client: GraphQLClient) -> None:
    data = await operator_client.data(INGEST, {"input": {"source": " ", "contacts": [{"phone": ANN_PHONE}]}})

    assert [(e["code"], e["field"]) for e in data["ingestContacts"]["userErrors"]] == [("INVALID", ["input", "source"])]


@pytest.mark.parametrize("role", [r for r in Role if r not in {Role.OPERATOR, Role.OWNER}])
async def test_only_roles_with_ingest_may_ingest(client_for: ClientFactory, role: Role) -> None:
    client = await client_for(role)

    data = await client.data(INGEST, {"input": {"source": "acme-pos", "contacts": [{"phone": ANN_PHONE}]}})

    assert [e["code"] for e in data["ingestContacts"]["userErrors"]] == ["FORBIDDEN"]
    owner = await client_for(Role.OWNER)
    assert (await owner.data(PERSONAS))["personas"]["totalCount"] == 0


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
