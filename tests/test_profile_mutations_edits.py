"""Profile mutations through GraphQL: updatePersona (normalized phone and
email, identity keys, duplicates, bad traits, the favorite store),
updateCustomAttributes, setTags and setOptIn (consent events, the SMS opt-out time, push
channels, privacy opt-outs), with their userErrors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from database import Database
from models import ConsentEvent, IdentityKey, Organization, Store
from resolvers.ingest import ConsentData
from schema.ids import to_global_id
from tests import profile_support
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, make_persona
from tests.profile_support import ANN_EMAIL, ANN_PHONE, errors_at, profile, send

NEW_PHONE = "(212) 736-5001"

INGEST = """
mutation ($input: IngestContactsInput!) {
  ingestContacts(input: $input) { results { outcome persona { number } userErrors { code } } }
}
"""


def opt_in(persona: dict[str, Any], channel: str) -> tuple[str, str | None]:
    found = next(o for o in persona["optIns"] if o["channel"] == channel)
    return found["status"], found["source"]


async def ingest(client: GraphQLClient, **contact: Any) -> dict[str, Any]:
    body = await client.data(INGEST, {"input": {"source": "test-pos", "contacts": [contact]}})
    result: dict[str, Any] = body["ingestContacts"]["results"][0]
    return result


ann = profile_support.ann
bea = profile_support.bea


# updatePersona ---------------------------------------------------------------------------------


async def test_an_update_normalizes_phone_and_email_and_moves_the_identity_keys(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    payload = await send(
        owner_client,
        "updatePersona",
        ann,
        firstName="  Annie ",
        phone="212.736.5001",
        email="  Annie@Example.COM ",
        birthday="1990-04-01",
    )
    assert payload["userErrors"] == []
    persona = payload["persona"]
    assert (persona["firstName"], persona["lastName"], persona["fullName"]) == ("Annie", "Lee", "Annie Lee")
    assert (persona["phone"], persona["email"], persona["birthday"]) == (
        "+12127365001",
        "annie@example.com",
        "1990-04-01",
    )
    assert persona["traits"]["mobilePhone"] == "+12127365001"
    async with db.session() as session:
        keys = await session.execute(
            select(col(IdentityKey.kind), col(IdentityKey.value)).where(col(IdentityKey.persona_id) == ann.id)
        )
        assert sorted(keys.all()) == [("email", "annie@example.com"), ("phone", "+12127365001")]
    # The new keys find her; the old ones are free for someone else.
    assert (await ingest(owner_client, phone=NEW_PHONE))["persona"]["number"] == ann.number
    newcomer = await ingest(owner_client, phone=ANN_PHONE)
    assert newcomer["outcome"] == "CREATED"
    assert newcomer["persona"]["number"] != ann.number


async def test_fields_left_out_stay_and_null_clears(owner_client: GraphQLClient, ann: MadePersona) -> None:
    payload = await send(owner_client, "updatePersona", ann, lastName=None)
    assert payload["userErrors"] == []
    assert (payload["persona"]["firstName"], payload["persona"]["lastName"]) == ("Ann", None)
    assert payload["persona"]["phone"] == "+14158675309"
    cleared = await send(owner_client, "updatePersona", ann, email=None)
    assert cleared["persona"]["email"] is None
    assert (await ingest(owner_client, email=ANN_EMAIL))["outcome"] == "CREATED"


async def test_a_phone_or_email_another_persona_holds_is_duplicate(
    owner_client: GraphQLClient, ann: MadePersona, bea: MadePersona
) -> None:
    payload = await send(owner_client, "updatePersona", ann, phone="646-783-0134", email="BEA@example.com")
    assert errors_at(payload) == [("DUPLICATE", ["input", "phone"]), ("DUPLICATE", ["input", "email"])]
    assert f"#{bea.number}" in payload["userErrors"][0]["message"]
    assert "merge" in payload["userErrors"][0]["message"]
    assert (await profile(owner_client, ann))["phone"] == "+14158675309"


async def test_an_own_value_in_another_format_is_no_duplicate(owner_client: GraphQLClient, ann: MadePersona) -> None:
    payload = await send(owner_client, "updatePersona", ann, phone="+1 415 867 5309", email="ANN@example.com")
    assert payload["userErrors"] == []


@pytest.mark.parametrize(
    ("input_", "expected"),
    [
        ({"phone": "12"}, [("INVALID_PHONE", ["input", "phone"])]),
        ({"phone": "555-555-5555"}, [("INVALID_PHONE", ["input", "phone"])]),
        ({"email": "not-an-email"}, [("INVALID_EMAIL", ["input", "email"])]),
        ({"email": "none@none.com"}, [("INVALID_EMAIL", ["input", "email"])]),
        (
            {"phone": "12", "email": "x@"},
            [("INVALID_PHONE", ["input", "phone"]), ("INVALID_EMAIL", ["input", "email"])],
        ),
        ({"phone": None, "email": ""}, [("NO_CONTACT_INFO", ["input", "phone"])]),
        ({"birthday": "2999-01-01"}, [("INVALID", ["input", "birthday"])]),
        ({"firstName": "x" * 201}, [("INVALID", ["input", "firstName"])]),
        ({"favoriteStoreId": "Zm9v"}, [("INVALID", ["input", "favoriteStoreId"])]),
    ],
)
async def test_bad_traits_are_user_errors_at_their_paths(
    owner_client: GraphQLClient, ann: MadePersona, input_: dict[str, Any], expected: list[tuple[str, list[str]]]
) -> None:
    before = await profile(owner_client, ann)
    payload = await send(owner_client, "updatePersona", ann, **input_)
    assert errors_at(payload) == expected
    assert await profile(owner_client, ann) == before


async def test_the_favorite_store_must_be_one_of_the_organizations(
    owner_client: GraphQLClient, db: Database, org: Organization, other_org: Organization, ann: MadePersona
) -> None:
    async with db.session() as session, session.begin():
        ours, theirs = Store(org_id=org.id, name="Mission St"), Store(org_id=other_org.id, name="Rival St")
        session.add_all([ours, theirs])
    missing = await send(owner_client, "updatePersona", ann, favoriteStoreId=to_global_id("Store", theirs.id))
    assert errors_at(missing) == [("NOT_FOUND", ["input", "favoriteStoreId"])]
    unknown = await send(owner_client, "updatePersona", ann, favoriteStoreId=to_global_id("Store", uuid.uuid4()))
    assert errors_at(unknown) == [("NOT_FOUND", ["input", "favoriteStoreId"])]
    payload = await send(owner_client, "updatePersona", ann, favoriteStoreId=to_global_id("Store", ours.id))
    assert payload["persona"]["traits"]["favoriteStore"] == {"name": "Mission St"}


# updateCustomAttributes and setTags -------------------------------------------------------------


async def test_attributes_are_set_and_removed(staff_client: GraphQLClient, db: Database, org: Organization) -> None:
    ann = await make_persona(db, org, phone=ANN_PHONE, attributes=[("tier", "silver"), ("pet", "cat")])
    payload = await send(
        staff_client,
        "updateCustomAttributes",
        ann,
        set=[{"key": " tier ", "value": "gold"}, {"key": "vape", "value": "yes"}],
        remove=["pet", "absent"],
    )
    assert payload["userErrors"] == []
    assert sorted((a["key"], a["value"], a["source"]) for a in payload["persona"]["customAttributes"]) == [
        ("tier", "gold", "MANUAL"),
        ("vape", "yes", "MANUAL"),
    ]


@pytest.mark.parametrize(
    ("input_", "field"),
    [
        ({"set": [{"key": " ", "value": "x"}]}, ["input", "set", "0", "key"]),
        ({"set": [{"key": "a", "value": "x"}, {"key": "a", "value": "y"}]}, ["input", "set", "1", "key"]),
        ({"set": [{"key": "a", "value": "  "}]}, ["input", "set", "0", "value"]),
        ({"set": [{"key": "a", "value": "x"}], "remove": ["b", "a"]}, ["input", "remove", "1"]),
        ({"remove": [""]}, ["input", "remove", "0"]),
    ],
)
async def test_bad_attribute_edits_are_invalid(
    owner_client: GraphQLClient, ann: MadePersona, input_: dict[str, Any], field: list[str]
) -> None:
    payload = await send(owner_client, "updateCustomAttributes", ann, **input_)
    assert errors_at(payload) == [("INVALID", field)]
    assert (await profile(owner_client, ann))["customAttributes"] == []


async def test_tags_are_added_and_removed(staff_client: GraphQLClient, db: Database, org: Organization) -> None:
    ann = await make_persona(db, org, phone=ANN_PHONE, tags=["new", "vip"])
    payload = await send(staff_client, "setTags", ann, add=["edibles", " vip ", "edibles"], remove=["new"])
    assert payload["userErrors"] == []
    assert sorted(payload["persona"]["tags"]) == ["edibles", "vip"]


@pytest.mark.parametrize(
    ("input_", "field"),
    [
        ({"add": ["ok", "  "]}, ["input", "add", "1"]),
        ({"remove": ["x" * 201]}, ["input", "remove", "0"]),
        ({"add": ["vip"], "remove": ["vip"]}, ["input", "remove", "0"]),
    ],
)
async def test_bad_tag_edits_are_invalid(
    owner_client: GraphQLClient, ann: MadePersona, input_: dict[str, Any], field: list[str]
) -> None:
    payload = await send(owner_client, "setTags", ann, **input_)
    assert errors_at(payload) == [("INVALID", field)]
    assert (await profile(owner_client, ann))["tags"] == []


# setOptIn -----------------------------------------------------------------------------------------


async def consent_events(db: Database, persona: MadePersona) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(col(ConsentEvent.channel), col(ConsentEvent.status), col(ConsentEvent.source))
            .where(col(ConsentEvent.persona_id) == persona.id)
            .order_by(col(ConsentEvent.occurred_at), col(ConsentEvent.id))
        )
        return [(c, s, src) for c, s, src in rows.all()]


async def test_every_consent_change_is_an_event_with_its_source_and_time(
    staff_client: GraphQLClient, db: Database, ann: MadePersona
) -> None:
    before = dt.datetime.now(dt.UTC)
    opted_in = await send(staff_client, "setOptIn", ann, channel="EMAIL", status="OPTED_IN")
    assert opt_in(opted_in["persona"], "EMAIL") == ("OPTED_IN", "STAFF")
    updated_at = next(o for o in opted_in["persona"]["optIns"] if o["channel"] == "EMAIL")["updatedAt"]
    assert dt.datetime.fromisoformat(updated_at) >= before - dt.timedelta(seconds=1)
    same = await send(staff_client, "setOptIn", ann, channel="EMAIL", status="OPTED_IN")
    assert same["userErrors"] == []
    out = await send(staff_client, "setOptIn", ann, channel="EMAIL", status="OPTED_OUT")
    assert opt_in(out["persona"], "EMAIL") == ("OPTED_OUT", "STAFF")
    assert await consent_events(db, ann) == [("EMAIL", "OPTED_IN", "STAFF"), ("EMAIL", "OPTED_OUT", "STAFF")]


async def test_a_text_opt_out_sets_the_sms_opt_out_time(staff_client: GraphQLClient, ann: MadePersona) -> None:
    assert (await profile(staff_client, ann))["logs"]["smsOptOutAt"] is None
    payload = await send(staff_client, "setOptIn", ann, channel="TEXT", status="OPTED_OUT")
    assert opt_in(payload["persona"], "TEXT") == ("OPTED_OUT", "STAFF")
    assert payload["persona"]["logs"]["smsOptOutAt"] is not None


@pytest.mark.parametrize("channel", ["MOBILE_PUSH", "BROWSER_PUSH"])
async def test_staff_cannot_opt_in_to_push(
    staff_client: GraphQLClient, db: Database, ann: MadePersona, channel: str
) -> None:
    payload = await send(staff_client, "setOptIn", ann, channel=channel, status="OPTED_IN")
    assert errors_at(payload) == [("CONSENT_REQUIRES_DEVICE", ["input", "status"])]
    assert opt_in(await profile(staff_client, ann), channel) == ("UNKNOWN", None)
    opted_out = await send(staff_client, "setOptIn", ann, channel=channel, status="OPTED_OUT")
    assert opt_in(opted_out["persona"], channel) == ("OPTED_OUT", "STAFF")
    assert await consent_events(db, ann) == [(channel, "OPTED_OUT", "STAFF")]


async def test_a_privacy_opt_out_is_not_undone_by_staff(
    staff_client: GraphQLClient, db: Database, org: Organization
) -> None:
    ann = await make_persona(db, org, phone=ANN_PHONE, consents=[ConsentData("EMAIL", "OPTED_OUT", "PRIVACY_REQUEST")])
    payload = await send(staff_client, "setOptIn", ann, channel="EMAIL", status="OPTED_IN")
    assert errors_at(payload) == [("OPTED_OUT", ["input", "status"])]
    assert opt_in(await profile(staff_client, ann), "EMAIL") == ("OPTED_OUT", "PRIVACY_REQUEST")
