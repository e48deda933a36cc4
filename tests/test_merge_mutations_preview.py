"""Manual merges through GraphQL: mergePreview says what a merge would do and writes nothing,
lists its blockers, and is refused for another organization's personas, malformed ids and roles
without MERGE_PERSONAS."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from database import Database
from models import Merge, Organization
from permissions.matrix import Role
from schema.ids import to_global_id
from tests import merge_mutations_support
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona, make_persona
from tests.merge_mutations_support import CAL_PHONE, MERGE, card, codes, errors_at

PREVIEW = """
query ($s: ID!, $m: ID!) {
  mergePreview(survivorId: $s, mergedId: $m) {
    survivor { number } merged { number }
    resultingPoints ordersMoved conflictingAttributes
    blockers { field message code }
  }
}
"""


# Ann and Bea, with orders, points, attributes, tags and consent (tests/merge_mutations_support.py).
pair = merge_mutations_support.pair


async def test_the_preview_says_what_a_merge_would_do_and_writes_nothing(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: tuple[MadePersona, MadePersona]
) -> None:
    ann, bea = pair
    before_ann, before_bea = await card(manager_client, ann), await card(manager_client, bea)
    preview = (await manager_client.data(PREVIEW, {"s": ann.gid, "m": bea.gid}))["mergePreview"]
    assert preview == {
        "survivor": {"number": ann.number},
        "merged": {"number": bea.number},
        "resultingPoints": before_ann["rewardPoints"] + before_bea["rewardPoints"],
        "ordersMoved": 2,
        "conflictingAttributes": ["tier"],
        "blockers": [],
    }
    assert await card(manager_client, ann) == before_ann
    assert await card(manager_client, bea) == before_bea
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Merge))).scalar_one() == 0


async def test_the_preview_lists_blockers(
    manager_client: GraphQLClient, pair: tuple[MadePersona, MadePersona], db: Database, org: Organization
) -> None:
    ann, bea = pair
    itself = (await manager_client.data(PREVIEW, {"s": ann.gid, "m": ann.gid}))["mergePreview"]
    assert errors_at({"userErrors": itself["blockers"]}) == [("SAME_PERSONA", ["mergedId"])]
    cal = await make_persona(db, org, phone=CAL_PHONE)
    merged = await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}})
    assert codes(merged["mergePersonas"]) == []
    again = (await manager_client.data(PREVIEW, {"s": cal.gid, "m": bea.gid}))["mergePreview"]
    assert errors_at({"userErrors": again["blockers"]}) == [("ALREADY_MERGED", ["mergedId"])]


async def test_the_preview_of_another_organizations_persona_is_not_found(
    client_for: ClientFactory, other_org: Organization, pair: tuple[MadePersona, MadePersona]
) -> None:
    ann, bea = pair
    rival = await client_for(Role.OWNER, other_org)
    body = await rival.execute(PREVIEW, {"s": ann.gid, "m": bea.gid})
    assert body["data"]["mergePreview"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


@pytest.mark.parametrize("malformed", ["s", "m"])
async def test_a_malformed_id_in_the_preview_is_bad_user_input_whichever_it_is(
    manager_client: GraphQLClient, malformed: str
) -> None:
    # Given one well-formed id of a persona that does not exist, and one malformed id
    unknown = to_global_id("Persona", uuid.uuid4())
    variables = {"s": unknown, "m": unknown, malformed: "%%%not-an-id"}
    # When the preview is asked for, then the malformed id is the error, not the unknown one
    body = await manager_client.execute(PREVIEW, variables)
    assert body["data"]["mergePreview"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert "Malformed ID" in body["errors"][0]["message"]


@pytest.mark.parametrize("role", [Role.STAFF, Role.ANALYST, Role.MARKETING, Role.OPERATOR])
async def test_the_preview_needs_merge_personas(
    client_for: ClientFactory, pair: tuple[MadePersona, MadePersona], role: Role
) -> None:
    ann, bea = pair
    body = await (await client_for(role)).execute(PREVIEW, {"s": ann.gid, "m": bea.gid})
    assert body["data"] == {"mergePreview": None}
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [("FORBIDDEN", ["mergePreview"])]
