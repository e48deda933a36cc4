"""Manual merges through GraphQL: mergePersonas moves everything to the survivor and leaves a
tombstone, and its userErrors: a persona into itself, a merged persona again either way, unknown
and other organizations' personas, and roles without MERGE_PERSONAS."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from database import Database
from models import Merge, Organization
from permissions.matrix import Role
from schema.ids import to_global_id
from tests import merge_mutations_support
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona, make_persona
from tests.merge_mutations_support import (
    BEA_EMAIL,
    CAL_PHONE,
    MERGE,
    MERGED_INTO,
    MERGES_OF,
    card,
    codes,
    errors_at,
)

# Ann and Bea, with orders, points, attributes, tags and consent (tests/merge_mutations_support.py).
pair = merge_mutations_support.pair


async def test_a_manual_merge_moves_everything_and_leaves_a_tombstone(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: tuple[MadePersona, MadePersona]
) -> None:
    ann, bea = pair
    before_ann, before_bea = await card(manager_client, ann), await card(manager_client, bea)
    payload = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    assert payload["userErrors"] == []
    merge = payload["merge"]
    assert merge["kind"] == "MANUAL"
    assert merge["mergedNumber"] == bea.number
    assert merge["actor"] == f"test {Role.MANAGER}"
    assert merge["reason"] is None
    assert merge["undoneAt"] is None
    assert merge["survivor"] == {"number": ann.number}
    persona = payload["persona"]
    assert persona["number"] == ann.number
    assert persona["rewardPoints"] == before_ann["rewardPoints"] + before_bea["rewardPoints"]
    assert persona["history"]["orders"]["totalCount"] == 3
    # The survivor's value wins; the survivor fills what it lacked.
    assert {a["key"]: a["value"] for a in persona["customAttributes"]} == {
        "tier": "gold",
        "store": "Mission",
        "pet": "dog",
    }
    assert sorted(persona["tags"]) == ["edibles", "vip"]
    assert persona["email"] == BEA_EMAIL
    # The most restrictive consent wins per channel.
    after = await card(manager_client, ann)
    statuses = {o["channel"]: (o["status"], o["source"]) for o in after["optIns"]}
    assert statuses["TEXT"] == ("OPTED_OUT", "IMPORT")
    assert statuses["EMAIL"] == ("OPTED_IN", "IMPORT")
    assert after["logs"]["smsOptOutAt"] is not None

    tombstone = (await manager_client.data(MERGED_INTO, {"id": bea.gid}))["persona"]
    assert tombstone == {"mergedInto": {"number": ann.number}}
    listed = await manager_client.data("{ personas { nodes { number } } }")
    assert [n["number"] for n in listed["personas"]["nodes"]] == [ann.number]
    merges = (await manager_client.data(MERGES_OF, {"id": ann.gid}))["persona"]["history"]["merges"]["nodes"]
    assert [m["id"] for m in merges] == [merge["id"]]


async def test_a_persona_cannot_be_merged_into_itself(manager_client: GraphQLClient, pair: Any) -> None:
    ann, _ = pair
    payload = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": ann.gid}}))[
        "mergePersonas"
    ]
    assert errors_at(payload) == [("SAME_PERSONA", ["input", "mergedId"])]
    assert payload["merge"] is None


async def test_a_merged_persona_cannot_be_merged_again_either_way(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: Any
) -> None:
    ann, bea = pair
    cal = await make_persona(db, org, phone=CAL_PHONE)
    await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}})
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": cal.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    assert errors_at(merged) == [("ALREADY_MERGED", ["input", "mergedId"])]
    survivor = (await manager_client.data(MERGE, {"input": {"survivorId": bea.gid, "mergedId": cal.gid}}))[
        "mergePersonas"
    ]
    assert errors_at(survivor) == [("ALREADY_MERGED", ["input", "survivorId"])]


async def test_unknown_and_other_organizations_personas_are_not_found(
    client_for: ClientFactory, db: Database, org: Organization, other_org: Organization, pair: Any
) -> None:
    ann, bea = pair
    ours = await client_for(Role.OWNER)
    stranger = await make_persona(db, other_org, phone=CAL_PHONE)
    for survivor, merged, field in (
        (ann.gid, stranger.gid, "mergedId"),
        (stranger.gid, ann.gid, "survivorId"),
        (ann.gid, to_global_id("Persona", uuid.uuid4()), "mergedId"),
        (ann.gid, to_global_id("Order", bea.id), "mergedId"),
    ):
        payload = (await ours.data(MERGE, {"input": {"survivorId": survivor, "mergedId": merged}}))["mergePersonas"]
        assert errors_at(payload) == [("NOT_FOUND", ["input", field])]
    rival = await client_for(Role.OWNER, other_org)
    payload = (await rival.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))["mergePersonas"]
    assert errors_at(payload) == [("NOT_FOUND", ["input", "survivorId"])]
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Merge))).scalar_one() == 0


@pytest.mark.parametrize("role", [Role.STAFF, Role.OPERATOR, Role.MARKETING])
async def test_merging_needs_merge_personas(client_for: ClientFactory, db: Database, pair: Any, role: Role) -> None:
    ann, bea = pair
    client = await client_for(role)
    payload = (await client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))["mergePersonas"]
    assert codes(payload) == ["FORBIDDEN"]
    assert (await client.data(MERGED_INTO, {"id": bea.gid}))["persona"]["mergedInto"] is None
