"""ingestContacts through GraphQL: what it refuses and where it says so: placeholders (never
identity keys, the operator's own included), invalid phones and emails, row errors with their
input paths, legacy points without a source id or below zero, push opt-ins not from the device,
a batch too large or without a source, and the roles without INGEST."""

from __future__ import annotations

from typing import Any

import pytest

from models import Organization
from permissions.matrix import Role
from schema.ids import to_global_id
from tests.conftest import ClientFactory, GraphQLClient
from tests.ingest_support import ANN_EMAIL, ANN_PHONE, BEA_EMAIL, BEA_PHONE, INGEST, PERSONAS, ingest, outcomes


def errors_of(result: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in result["userErrors"]]


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
