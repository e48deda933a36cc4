"""Profile mutations through GraphQL: archivePersona and restorePersona,
updatePersona, updateCustomAttributes, setTags and setOptIn, with their
userErrors, permissions, tenant isolation and audit entries."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from database import Database
from models import ConsentEvent, IdentityKey, Organization, Store
from permissions.matrix import Role
from resolvers.audit import audit_log
from resolvers.ingest import ConsentData
from schema.ids import to_global_id
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona, days_ago, make_persona

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"
BEA_PHONE, BEA_EMAIL = "(646) 783-0134", "bea@example.com"
NEW_PHONE = "(212) 736-5001"

PROFILE = """
    id number firstName lastName fullName archivedAt email phone birthday rewardPoints
    traits { mobilePhone emailAddress favoriteStore { name } }
    customAttributes { key value source }
    tags
    optIns { channel status source updatedAt }
    logs { smsOptOutAt }
"""
ARCHIVE = f"""
mutation ($input: PersonaRefInput!) {{
  archivePersona(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
RESTORE = f"""
mutation ($input: PersonaRefInput!) {{
  restorePersona(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
UPDATE_PERSONA = f"""
mutation ($input: UpdatePersonaInput!) {{
  updatePersona(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
UPDATE_ATTRIBUTES = f"""
mutation ($input: UpdateCustomAttributesInput!) {{
  updateCustomAttributes(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
SET_TAGS = f"""
mutation ($input: SetTagsInput!) {{
  setTags(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
SET_OPT_IN = f"""
mutation ($input: SetOptInInput!) {{
  setOptIn(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
PERSONA = f"query ($id: ID!) {{ persona(id: $id) {{ {PROFILE} }} }}"
PERSONAS = """
query ($all: Boolean) { personas(includeArchived: $all) { totalCount nodes { number } } }
"""
RECORD_ORDERS = """
mutation ($input: RecordOrdersInput!) {
  recordOrders(input: $input) { results { outcome persona { number rewardPoints } userErrors { code } } }
}
"""
INGEST = """
mutation ($input: IngestContactsInput!) {
  ingestContacts(input: $input) { results { outcome persona { number } userErrors { code } } }
}
"""
ORDER_POINTS = """
query ($id: ID!) {
  persona(id: $id) {
    rewardPoints
    history { orders(first: 10) { nodes { externalId pointsEarned } } points(first: 10) { nodes { kind delta note } } }
  }
}
"""
MERGE = """
mutation ($input: MergePersonasInput!) { mergePersonas(input: $input) { userErrors { code } } }
"""

# One valid input per profile mutation, for the rules every mutation shares.
MUTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "archivePersona": (ARCHIVE, {}),
    "restorePersona": (RESTORE, {}),
    "updatePersona": (UPDATE_PERSONA, {"firstName": "Annie"}),
    "updateCustomAttributes": (UPDATE_ATTRIBUTES, {"set": [{"key": "tier", "value": "gold"}]}),
    "setTags": (SET_TAGS, {"add": ["vip"]}),
    "setOptIn": (SET_OPT_IN, {"channel": "EMAIL", "status": "OPTED_IN"}),
}


def errors_at(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def send(client: GraphQLClient, name: str, persona: MadePersona, **input_: Any) -> dict[str, Any]:
    document, _ = MUTATIONS[name]
    payload: dict[str, Any] = (await client.data(document, {"input": {"personaId": persona.gid, **input_}}))[name]
    return payload


async def profile(client: GraphQLClient, persona: MadePersona) -> dict[str, Any]:
    data: dict[str, Any] = (await client.data(PERSONA, {"id": persona.gid}))["persona"]
    return data


def opt_in(persona: dict[str, Any], channel: str) -> tuple[str, str | None]:
    found = next(o for o in persona["optIns"] if o["channel"] == channel)
    return found["status"], found["source"]


async def ingest(client: GraphQLClient, **contact: Any) -> dict[str, Any]:
    body = await client.data(INGEST, {"input": {"source": "test-pos", "contacts": [contact]}})
    result: dict[str, Any] = body["ingestContacts"]["results"][0]
    return result


async def record_order(client: GraphQLClient, external_id: str, phone: str, subtotal: int) -> dict[str, Any]:
    body = await client.data(
        RECORD_ORDERS,
        {
            "input": {
                "orders": [
                    {
                        "externalId": external_id,
                        "source": "test-pos",
                        "customer": {"phone": phone},
                        "placedAt": days_ago(1).isoformat(),
                        "subtotal": f"{subtotal}.00",
                        "tax": "0.00",
                        "total": f"{subtotal}.00",
                        "lines": [{"product": "Gummies", "quantity": 1, "unitPrice": f"{subtotal}.00"}],
                    }
                ]
            }
        },
    )
    result: dict[str, Any] = body["recordOrders"]["results"][0]
    assert result["outcome"] == "RECORDED", result
    return result


@pytest.fixture
async def ann(db: Database, org: Organization) -> MadePersona:
    return await make_persona(
        db, org, first_name="Ann", last_name="Lee", phone=ANN_PHONE, email=ANN_EMAIL, loyalty_member=True
    )


@pytest.fixture
async def bea(db: Database, org: Organization) -> MadePersona:
    return await make_persona(db, org, first_name="Bea", phone=BEA_PHONE, email=BEA_EMAIL)


# Rules every profile mutation shares --------------------------------------------------


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_a_role_without_the_permission_gets_forbidden_and_nothing_changes(
    client_for: ClientFactory, db: Database, org: Organization, ann: MadePersona, name: str
) -> None:
    analyst = await client_for(Role.ANALYST)
    before = await profile(await client_for(Role.OWNER), ann)
    payload = await send(analyst, name, ann, **MUTATIONS[name][1])
    assert errors_at(payload) == [("FORBIDDEN", None)]
    assert payload["persona"] is None
    assert await profile(await client_for(Role.OWNER), ann) == before
    async with db.session() as session:
        audit = await audit_log(session, org.id)
    assert [(a.operation, a.outcome) for a in audit] == [(name, "FORBIDDEN")]


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_another_organizations_persona_is_not_found(
    client_for: ClientFactory, other_org: Organization, ann: MadePersona, name: str
) -> None:
    rival = await client_for(Role.OWNER, other_org)
    payload = await send(rival, name, ann, **MUTATIONS[name][1])
    assert errors_at(payload) == [("NOT_FOUND", ["input", "personaId"])]


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_a_malformed_persona_id_is_invalid(owner_client: GraphQLClient, name: str) -> None:
    document, extra = MUTATIONS[name]
    payload = (await owner_client.data(document, {"input": {"personaId": "nope", **extra}}))[name]
    assert errors_at(payload) == [("INVALID", ["input", "personaId"])]


@pytest.mark.parametrize("name", [n for n in MUTATIONS if n not in {"archivePersona", "restorePersona"}])
async def test_a_merged_persona_is_edited_through_its_survivor(
    owner_client: GraphQLClient, ann: MadePersona, bea: MadePersona, name: str
) -> None:
    merged = await owner_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}})
    assert merged["mergePersonas"]["userErrors"] == []
    payload = await send(owner_client, name, bea, **MUTATIONS[name][1])
    assert errors_at(payload) == [("ALREADY_MERGED", ["input", "personaId"])]


async def test_each_profile_mutation_writes_one_audit_entry(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    since = dt.datetime.now(dt.UTC)
    for name, (_, extra) in MUTATIONS.items():
        assert (await send(owner_client, name, ann, **extra))["userErrors"] == []
    async with db.session() as session:
        audit = await audit_log(session, org.id, since)
    assert [(a.operation, a.outcome, a.target_ids) for a in audit] == [(n, "OK", ann.gid) for n in MUTATIONS]


# archivePersona / restorePersona ------------------------------------------------------------


async def test_an_archived_persona_leaves_the_list_but_is_found_by_id(
    manager_client: GraphQLClient, ann: MadePersona, bea: MadePersona
) -> None:
    payload = await send(manager_client, "archivePersona", ann)
    assert payload["userErrors"] == []
    assert payload["persona"]["archivedAt"] is not None
    listed = (await manager_client.data(PERSONAS, {"all": False}))["personas"]
    assert [n["number"] for n in listed["nodes"]] == [bea.number]
    everyone = (await manager_client.data(PERSONAS, {"all": True}))["personas"]
    assert sorted(n["number"] for n in everyone["nodes"]) == sorted([ann.number, bea.number])
    assert (await profile(manager_client, ann))["archivedAt"] == payload["persona"]["archivedAt"]

    again = await send(manager_client, "archivePersona", ann)
    assert errors_at(again) == [("ARCHIVED", ["input", "personaId"])]

    restored = await send(manager_client, "restorePersona", ann)
    assert restored["userErrors"] == []
    assert restored["persona"]["archivedAt"] is None
    assert (await manager_client.data(PERSONAS, {"all": False}))["personas"]["totalCount"] == 2
    not_archived = await send(manager_client, "restorePersona", ann)
    assert errors_at(not_archived) == [("INVALID", ["input", "personaId"])]


async def test_restore_credits_what_orders_placed_while_archived_would_have_earned(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(Organization)
            .where(col(Organization.id) == org.id)
            .values(points_per_dollar_milli=1500, points_per_order=5)
        )
    await record_order(owner_client, "before", ANN_PHONE, 20)  # 30 + 5
    assert (await profile(owner_client, ann))["rewardPoints"] == 35
    await send(owner_client, "archivePersona", ann)
    while_archived = await record_order(owner_client, "during-1", ANN_PHONE, 41)  # floor(61.5) + 5 = 66
    await record_order(owner_client, "during-2", ANN_PHONE, 10)  # 15 + 5 = 20
    assert while_archived["persona"]["rewardPoints"] == 35

    restored = await send(owner_client, "restorePersona", ann)
    assert restored["persona"]["rewardPoints"] == 35 + 66 + 20
    card = (await owner_client.data(ORDER_POINTS, {"id": ann.gid}))["persona"]
    earned = {o["externalId"]: o["pointsEarned"] for o in card["history"]["orders"]["nodes"]}
    assert earned == {"before": 35, "during-1": 66, "during-2": 20}
    credits = [p for p in card["history"]["points"]["nodes"] if p["note"] and "restore" in p["note"]]
    assert sorted((p["kind"], p["delta"]) for p in credits) == [
        ("ORDER", 15),
        ("ORDER", 61),
        ("VISIT", 5),
        ("VISIT", 5),
    ]

    # A second archive and restore credits nothing twice.
    await send(owner_client, "archivePersona", ann)
    again = await send(owner_client, "restorePersona", ann)
    assert again["persona"]["rewardPoints"] == 121


SAVE_AUDIENCE = """
mutation ($input: SaveAudienceInput!) { saveAudience(input: $input) { userErrors { code } } }
"""


async def test_restore_credits_the_audience_boost_too(owner_client: GraphQLClient, ann: MadePersona) -> None:
    body = await owner_client.data(
        SAVE_AUDIENCE, {"input": {"name": "VIPs", "query": "tag:vip", "pointsMultiplier": "1.5"}}
    )
    assert body["saveAudience"]["userErrors"] == []
    await send(owner_client, "setTags", ann, add=["vip"])
    await send(owner_client, "archivePersona", ann)
    await record_order(owner_client, "during", ANN_PHONE, 40)  # ORDER 40, boost floor(40 x 0.5) = 20
    restored = await send(owner_client, "restorePersona", ann)
    assert restored["persona"]["rewardPoints"] == 60
    card = (await owner_client.data(ORDER_POINTS, {"id": ann.gid}))["persona"]
    assert sorted((p["kind"], p["delta"]) for p in card["history"]["points"]["nodes"]) == [
        ("AUDIENCE_BOOST", 20),
        ("ORDER", 40),
    ]


async def test_restore_credits_nothing_for_a_non_member(owner_client: GraphQLClient, bea: MadePersona) -> None:
    await send(owner_client, "archivePersona", bea)
    await record_order(owner_client, "b-1", BEA_PHONE, 50)
    restored = await send(owner_client, "restorePersona", bea)
    assert restored["persona"]["rewardPoints"] == 0


async def test_staff_may_not_archive(staff_client: GraphQLClient, ann: MadePersona) -> None:
    assert errors_at(await send(staff_client, "archivePersona", ann)) == [("FORBIDDEN", None)]


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
