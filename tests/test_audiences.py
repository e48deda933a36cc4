"""Audiences: the default ALL, saving and deleting with MANAGE_AUDIENCES,
size and personas, Persona.audiences, and the multiplier behind AUDIENCE_BOOST."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from database import Database
from models import Audience, AuditEntry, Organization, PointsEntry
from models.enums import PointsEntryKind
from permissions.matrix import ROLE_PERMISSIONS, Permission, Role
from resolvers.audiences import best_multiplier_milli
from resolvers.ingest import ContactData
from schema.ids import to_global_id
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import days_ago, make_persona
from tests.search_cast import Cast, archive, erase, make_cast, merged_pair, order

AUDIENCE_FIELDS = "id name query isDefault pointsMultiplier size personas(first: 10) { totalCount nodes { fullName } }"
AUDIENCES = f"{{ audiences {{ {AUDIENCE_FIELDS} }} }}"
AUDIENCE = f"query ($id: ID!) {{ audience(id: $id) {{ {AUDIENCE_FIELDS} }} }}"
SAVE = f"""
mutation ($input: SaveAudienceInput!) {{
  saveAudience(input: $input) {{ audience {{ {AUDIENCE_FIELDS} }} userErrors {{ field message code }} }}
}}
"""
DELETE = """
mutation ($input: DeleteAudienceInput!) {
  deleteAudience(input: $input) { audience { id name } userErrors { field message code } }
}
"""
PERSONA_AUDIENCES = """
query ($id: ID!) { persona(id: $id) { fullName audiences { name isDefault pointsMultiplier } } }
"""
LIST_AUDIENCES = """
{ personas(first: 50) { nodes { fullName audiences { name } } } }
"""
ANN, ANNABEL, JOANN, BOB = "Ann Lee", "Annabel Leeds", "Joann Kaleel", "Bob Stone"


@pytest.fixture
async def cast(db: Database, org: Organization) -> Cast:
    return await make_cast(db, org)


async def save(client: GraphQLClient, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await client.data(SAVE, {"input": fields}))["saveAudience"]
    return payload


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def audience_count(db: Database, org: Organization) -> int:
    async with db.read() as conn:
        stmt = select(func.count()).select_from(Audience).where(col(Audience.org_id) == org.id)
        return int((await conn.execute(stmt)).scalar_one())


async def test_the_default_audience_all_holds_every_listed_persona_with_pii(
    db: Database, org: Organization, cast: Cast, owner_client: GraphQLClient, analyst_client: GraphQLClient
) -> None:
    # Given an archived, an erased and a merged-away persona beside the others
    await archive(owner_client, cast.annabel)
    await erase(owner_client, phone="415-555-0103")
    await merged_pair(db, org, "Zed", "415-555-0177", "zed@example.com")
    # Then ALL holds Ann, Bob and Zed's survivor, for any role
    (everyone,) = (await analyst_client.data(AUDIENCES))["audiences"]
    assert everyone["name"] == "ALL"
    assert everyone["isDefault"] is True
    assert everyone["query"] == ""
    assert everyone["pointsMultiplier"] == "1"
    assert everyone["size"] == 3
    assert [n["fullName"] for n in everyone["personas"]["nodes"]] == ["Zed Survivor", BOB, ANN]
    assert everyone["personas"]["totalCount"] == 3
    again = (await analyst_client.data(AUDIENCE, {"id": everyone["id"]}))["audience"]
    assert again == everyone


async def test_a_manager_saves_an_audience_whose_size_and_personas_follow_its_query(
    cast: Cast, manager_client: GraphQLClient, staff_client: GraphQLClient
) -> None:
    payload = await save(
        manager_client, name="Loyal regulars", query="is:loyalty_member orders>=1", pointsMultiplier="1.5"
    )
    assert payload["userErrors"] == []
    saved = payload["audience"]
    assert saved["name"] == "Loyal regulars"
    assert saved["query"] == "is:loyalty_member orders>=1"
    assert saved["isDefault"] is False
    assert saved["pointsMultiplier"] == "1.5"
    assert saved["size"] == 2
    assert [n["fullName"] for n in saved["personas"]["nodes"]] == [BOB, ANN]
    # And everyone sees it in the list, after ALL
    listed = (await staff_client.data(AUDIENCES))["audiences"]
    assert [a["name"] for a in listed] == ["ALL", "Loyal regulars"]
    del cast


async def test_membership_follows_the_personas_data(
    db: Database, org: Organization, cast: Cast, owner_client: GraphQLClient
) -> None:
    saved = (await save(owner_client, name="Regulars", query="orders>=2"))["audience"]
    assert [n["fullName"] for n in saved["personas"]["nodes"]] == [BOB]
    # When Ann places a second order, she is in the audience: nothing was stored
    await order(db, org, "a-2", ContactData(email="ann@example.com"), days_ago(1))
    again = (await owner_client.data(AUDIENCE, {"id": saved["id"]}))["audience"]
    assert [n["fullName"] for n in again["personas"]["nodes"]] == [BOB, ANN]
    assert again["size"] == 2


async def test_a_name_search_audience_ranks_like_the_search(cast: Cast, owner_client: GraphQLClient) -> None:
    saved = (await save(owner_client, name="Lees", query="lee has:email"))["audience"]
    assert [n["fullName"] for n in saved["personas"]["nodes"]] == [ANN, ANNABEL]
    del cast


@pytest.mark.parametrize(
    ("query", "fragment"),
    [("foo:bar", "Unknown condition"), ('"unclosed', "Unclosed quote"), ("signed_up>2024-02-30", "not a date")],
)
async def test_an_audience_query_must_parse(
    db: Database, org: Organization, owner_client: GraphQLClient, query: str, fragment: str
) -> None:
    payload = await save(owner_client, name="Broken", query=query)
    assert payload["audience"] is None
    (error,) = payload["userErrors"]
    assert error["code"] == "BAD_QUERY"
    assert error["field"] == ["input", "query"]
    assert fragment in error["message"]
    assert "at character" in error["message"]
    assert await audience_count(db, org) == 1


async def test_an_audience_needs_a_name_a_query_and_a_sane_multiplier(owner_client: GraphQLClient) -> None:
    payload = await save(owner_client, name="  ", query="  ", pointsMultiplier="0.5")
    assert sorted((e["field"][1], e["code"]) for e in payload["userErrors"]) == [
        ("name", "INVALID"),
        ("pointsMultiplier", "INVALID"),
        ("query", "INVALID"),
    ]
    for multiplier in ("11", "1.2345", "-1"):
        payload = await save(owner_client, name="VIPs", query="tag:VIP", pointsMultiplier=multiplier)
        assert codes(payload) == ["INVALID"], multiplier
    assert codes(await save(owner_client, name="ALL", query="tag:VIP")) == ["DUPLICATE"]
    assert codes(await save(owner_client, name="VIPs", query="tag:VIP")) == []
    assert codes(await save(owner_client, name="VIPs", query="tag:VIP")) == ["DUPLICATE"]


@pytest.mark.parametrize("role", sorted(Role, key=str))
async def test_saving_and_deleting_need_manage_audiences(
    db: Database, org: Organization, client_for: ClientFactory, role: Role
) -> None:
    client = await client_for(role)
    payload = await save(client, name="VIPs", query="tag:VIP")
    allowed = Permission.MANAGE_AUDIENCES in ROLE_PERMISSIONS[role]
    assert codes(payload) == ([] if allowed else ["FORBIDDEN"])
    assert await audience_count(db, org) == (2 if allowed else 1)
    if allowed:
        deleted = (await client.data(DELETE, {"input": {"id": payload["audience"]["id"]}}))["deleteAudience"]
        assert codes(deleted) == []
        assert deleted["audience"]["name"] == "VIPs"
        assert await audience_count(db, org) == 1


async def test_an_audience_is_updated_by_id_and_all_keeps_its_query(
    db: Database, org: Organization, cast: Cast, owner_client: GraphQLClient
) -> None:
    vip = (await save(owner_client, name="VIPs", query="tag:VIP"))["audience"]
    assert vip["size"] == 1
    changed = await save(owner_client, id=vip["id"], name="Gold tier", query="attr:tier=gold", pointsMultiplier="2")
    assert codes(changed) == []
    assert changed["audience"]["id"] == vip["id"]
    assert changed["audience"]["name"] == "Gold tier"
    assert changed["audience"]["pointsMultiplier"] == "2"
    # ALL can change its multiplier, nothing else
    everyone = (await owner_client.data(AUDIENCES))["audiences"][0]
    assert codes(await save(owner_client, id=everyone["id"], name="ALL", query="tag:VIP")) == ["INVALID"]
    assert codes(await save(owner_client, id=everyone["id"], name="Everyone", query="")) == ["INVALID"]
    boosted = await save(owner_client, id=everyone["id"], name="ALL", query="", pointsMultiplier="1.1")
    assert codes(boosted) == []
    assert boosted["audience"]["pointsMultiplier"] == "1.1"
    assert boosted["audience"]["size"] == 4
    del cast, db, org


async def test_the_default_audience_cannot_be_deleted_and_unknown_ids_are_not_found(
    db: Database, org: Organization, other_org: Organization, owner_client: GraphQLClient, client_for: ClientFactory
) -> None:
    everyone = (await owner_client.data(AUDIENCES))["audiences"][0]
    refused = (await owner_client.data(DELETE, {"input": {"id": everyone["id"]}}))["deleteAudience"]
    assert codes(refused) == ["INVALID"]
    assert refused["audience"] is None
    assert await audience_count(db, org) == 1
    # Another organization's audience is as if it did not exist
    rival = await client_for(Role.OWNER, other_org)
    theirs = (await rival.data(AUDIENCES))["audiences"][0]["id"]
    assert codes((await owner_client.data(DELETE, {"input": {"id": theirs}}))["deleteAudience"]) == ["NOT_FOUND"]
    body = await owner_client.execute(AUDIENCE, {"id": theirs})
    assert body["data"] == {"audience": None}
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    persona_id = to_global_id("Persona", org.id)
    assert codes((await owner_client.data(DELETE, {"input": {"id": persona_id}}))["deleteAudience"]) == ["NOT_FOUND"]
    assert codes((await owner_client.data(DELETE, {"input": {"id": "nonsense"}}))["deleteAudience"]) == ["INVALID"]
    body = await owner_client.execute(AUDIENCE, {"id": "nonsense"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # And every refusal is audited
    async with db.read() as conn:
        outcomes = (
            await conn.execute(select(col(AuditEntry.outcome)).where(col(AuditEntry.operation) == "deleteAudience"))
        ).scalars()
        assert set(outcomes) == {"REFUSED"}


async def test_persona_audiences_lists_the_audiences_the_persona_is_in(
    cast: Cast, owner_client: GraphQLClient, staff_client: GraphQLClient
) -> None:
    await save(owner_client, name="VIPs", query="tag:VIP", pointsMultiplier="1.25")
    await save(owner_client, name="Regulars", query="orders>=1")
    await save(owner_client, name="Archived", query="is:archived")
    ann = (await staff_client.data(PERSONA_AUDIENCES, {"id": cast.ann.gid}))["persona"]
    assert [(a["name"], a["isDefault"], a["pointsMultiplier"]) for a in ann["audiences"]] == [
        ("ALL", True, "1"),
        ("Regulars", False, "1"),
        ("VIPs", False, "1.25"),
    ]
    joann = (await staff_client.data(PERSONA_AUDIENCES, {"id": cast.joann.gid}))["persona"]
    assert [a["name"] for a in joann["audiences"]] == ["ALL"]
    await archive(owner_client, cast.joann)
    joann = (await staff_client.data(PERSONA_AUDIENCES, {"id": cast.joann.gid}))["persona"]
    assert [a["name"] for a in joann["audiences"]] == ["Archived"]


async def test_persona_audiences_on_a_list_page_take_the_same_statements_for_any_number_of_personas(
    db: Database, org: Organization, owner_client: GraphQLClient, statements: Any
) -> None:
    await save(owner_client, name="VIPs", query="tag:VIP")
    await save(owner_client, name="Texters", query="has:mobile_phone")

    async def count_for(personas: int) -> int:
        for n in range(personas):
            await make_persona(db, org, first_name=f"P{n}", email=f"p{n}-{personas}@example.com", tags=["VIP"])
        await owner_client.data(LIST_AUDIENCES)  # warm up: the key's use, the audience list last read
        statements.active, statements.count = True, 0
        await owner_client.data(LIST_AUDIENCES)
        statements.active = False
        return int(statements.count)

    assert await count_for(2) == await count_for(8)


async def test_memberships_go_out_with_the_audience_list_and_follow_any_change_to_it(
    db: Database, cast: Cast, owner_client: GraphQLClient, statements: Any, backend: str
) -> None:
    # Given a saved audience, and the card's audiences read once (the list as last read is kept)
    await save(owner_client, name="VIPs", query="tag:VIP")

    async def audiences_of_ann() -> tuple[list[str], int]:
        statements.active, statements.count = True, 0
        data = await owner_client.data(PERSONA_AUDIENCES, {"id": cast.ann.gid})
        statements.active = False
        return [a["name"] for a in data["persona"]["audiences"]], int(statements.count)

    first, cold = await audiences_of_ann()
    assert first == ["ALL", "VIPs"]
    # When it is read again, the memberships go out with the list: no round trip of their own
    # where reads coalesce (one statement each where they do not)
    again, warm = await audiences_of_ann()
    assert again == first
    assert warm == (cold - 1 if backend == "postgresql" else cold)
    # And when another process changes the list, the next card follows it at once
    vips = update(Audience).where(col(Audience.org_id) == cast.ann.row.org_id, col(Audience.name) == "VIPs")
    async with db.session() as session, session.begin():
        await session.execute(vips.values(query="tag:nobody"))
    assert (await audiences_of_ann())[0] == ["ALL"]
    async with db.session() as session, session.begin():
        await session.execute(vips.values(query="has:mobile_phone", name="Texters"))
    assert (await audiences_of_ann())[0] == ["ALL", "Texters"]


async def test_the_best_multiplier_among_a_personas_audiences_feeds_audience_boost(
    db: Database, org: Organization, cast: Cast, owner_client: GraphQLClient
) -> None:
    # Given Ann in two boosting audiences, and Joann in none
    await save(owner_client, name="VIPs", query="tag:VIP", pointsMultiplier="1.5")
    await save(owner_client, name="Gold", query="attr:tier=gold", pointsMultiplier="2.25")
    await save(owner_client, name="Big spenders", query="spent>1000", pointsMultiplier="3")
    async with db.session() as session, session.begin():
        assert await best_multiplier_milli(session, org.id, cast.ann.id) == 2250
        assert await best_multiplier_milli(session, org.id, cast.joann.id) == 1000
    # When Ann places a $40 order
    await order(
        db,
        org,
        "a-2",
        ContactData(email="ann@example.com"),
        days_ago(0),
        subtotal=Decimal(40),
        tax=Decimal(4),
        total=Decimal(44),
    )
    # Then the boost is floor(40 x (2.25 - 1)) = 50 points
    async with db.read() as conn:
        stmt = select(col(PointsEntry.delta)).where(
            col(PointsEntry.org_id) == org.id,
            col(PointsEntry.persona_id) == cast.ann.id,
            col(PointsEntry.kind) == PointsEntryKind.AUDIENCE_BOOST.value,
        )
        assert list((await conn.execute(stmt)).scalars()) == [50]
