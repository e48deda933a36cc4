"""Manual merges through GraphQL: undoMerge gives both cards back exactly, leaves the survivor
what it gained after the merge, undoes automatic merges too, and its userErrors: a key claimed
since, undone twice, the merged points spent, and an unknown or foreign merge."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from database import Database
from models import Organization, PointsEntry
from permissions.matrix import Role
from resolvers.audit import audit_log
from schema.ids import to_global_id
from tests import merge_mutations_support
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import make_persona
from tests.merge_mutations_support import (
    ANN_EMAIL,
    ANN_PHONE,
    BEA_EMAIL,
    BEA_PHONE,
    CAL_PHONE,
    MERGE,
    MERGED_INTO,
    MERGES_OF,
    award,
    card,
    codes,
    errors_at,
    order,
)

UNDO = """
mutation ($input: UndoMergeInput!) {
  undoMerge(input: $input) {
    persona { number rewardPoints }
    merge { id undoneAt }
    userErrors { field message code }
  }
}
"""
INGEST = """
mutation ($input: IngestContactsInput!) {
  ingestContacts(input: $input) { results { outcome persona { number } userErrors { code } } }
}
"""
UPDATE_PERSONA = """
mutation ($input: UpdatePersonaInput!) { updatePersona(input: $input) { userErrors { code } } }
"""


def without_times(value: Any) -> Any:
    """The card with every timestamp left out (fields named *At)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if not k.endswith("At")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


# Ann and Bea, with orders, points, attributes, tags and consent (tests/merge_mutations_support.py).
pair = merge_mutations_support.pair


async def test_merge_then_undo_gives_both_cards_back_exactly(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: Any
) -> None:
    ann, bea = pair
    before = [await card(manager_client, p) for p in (ann, bea)]
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]
    assert undone["userErrors"] == []
    assert undone["merge"]["undoneAt"] is not None
    assert undone["persona"] == {"number": ann.number, "rewardPoints": before[0]["rewardPoints"]}
    after = [await card(manager_client, p) for p in (ann, bea)]
    assert without_times(after) == without_times(before)
    # The ledger's own times come back too: the entries are the same rows.
    assert [p["history"]["points"] for p in after] == [p["history"]["points"] for p in before]
    async with db.session() as session:
        audit = await audit_log(session, org.id)
    assert [a.operation for a in audit][-2:] == ["mergePersonas", "undoMerge"]


async def test_the_survivor_keeps_what_it_gained_after_the_merge(
    manager_client: GraphQLClient, owner_client: GraphQLClient, pair: Any
) -> None:
    ann, bea = pair
    before_ann, before_bea = await card(manager_client, ann), await card(manager_client, bea)
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    await award(manager_client, ann, 100)
    await order(owner_client, "a-2", BEA_PHONE, 1, ("Mints", 1))  # Bea's phone now finds Ann
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]
    assert undone["userErrors"] == []
    after_ann, after_bea = await card(manager_client, ann), await card(manager_client, bea)
    assert after_bea["rewardPoints"] == before_bea["rewardPoints"]
    assert after_bea["history"]["orders"]["totalCount"] == 2
    assert after_ann["history"]["orders"]["totalCount"] == 2
    gained = after_ann["rewardPoints"] - before_ann["rewardPoints"]
    assert gained >= 100  # the award and the new order's accrual stayed with Ann


async def test_an_automatic_merge_can_be_undone_too(
    operator_client: GraphQLClient, manager_client: GraphQLClient, pair: Any
) -> None:
    ann, bea = pair
    before = [await card(manager_client, p) for p in (ann, bea)]
    body = await operator_client.data(
        INGEST, {"input": {"source": "test-pos", "contacts": [{"phone": ANN_PHONE, "email": BEA_EMAIL}]}}
    )
    assert body["ingestContacts"]["results"][0]["outcome"] == "MERGED"
    merges = (await manager_client.data(MERGES_OF, {"id": ann.gid}))["persona"]["history"]["merges"]["nodes"]
    assert [m["kind"] for m in merges] == ["AUTOMATIC"]
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merges[0]["id"]}}))["undoMerge"]
    assert undone["userErrors"] == []
    after = [await card(manager_client, p) for p in (ann, bea)]
    assert without_times(after[1]) == without_times(before[1])
    assert after[0]["rewardPoints"] == before[0]["rewardPoints"]


async def test_undo_is_cannot_undo_when_a_key_was_claimed_since(
    manager_client: GraphQLClient, operator_client: GraphQLClient, db: Database, org: Organization
) -> None:
    ann = await make_persona(db, org, email=ANN_EMAIL)
    bea = await make_persona(db, org, phone=BEA_PHONE)
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    assert merged["persona"]["phone"] == "+16467830134"
    # Ann gets her own number; Bea's old one is free, and a new customer takes it.
    changed = await manager_client.data(UPDATE_PERSONA, {"input": {"personaId": ann.gid, "phone": CAL_PHONE}})
    assert codes(changed["updatePersona"]) == []
    body = await operator_client.data(INGEST, {"input": {"source": "test-pos", "contacts": [{"phone": BEA_PHONE}]}})
    newcomer = body["ingestContacts"]["results"][0]
    assert newcomer["outcome"] == "CREATED"
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]
    assert errors_at(undone) == [("CANNOT_UNDO", ["input", "mergeId"])]
    assert f"#{newcomer['persona']['number']}" in undone["userErrors"][0]["message"]
    assert (await manager_client.data(MERGED_INTO, {"id": bea.gid}))["persona"]["mergedInto"] == {"number": ann.number}


async def test_undo_twice_is_cannot_undo(manager_client: GraphQLClient, pair: Any) -> None:
    ann, bea = pair
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    variables = {"input": {"mergeId": merged["merge"]["id"]}}
    assert codes((await manager_client.data(UNDO, variables))["undoMerge"]) == []
    again = (await manager_client.data(UNDO, variables))["undoMerge"]
    assert errors_at(again) == [("CANNOT_UNDO", ["input", "mergeId"])]
    assert "already undone" in again["userErrors"][0]["message"]


async def test_undo_is_cannot_undo_when_the_survivor_spent_the_merged_points(
    manager_client: GraphQLClient, db: Database, org: Organization, pair: Any
) -> None:
    ann, bea = pair
    merged = (await manager_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))[
        "mergePersonas"
    ]
    points = merged["persona"]["rewardPoints"]
    spend = """mutation ($input: AdjustPointsInput!) { adjustPoints(input: $input) { userErrors { code } } }"""
    body = await manager_client.data(spend, {"input": {"personaId": ann.gid, "delta": -points, "note": "spent"}})
    assert codes(body["adjustPoints"]) == []
    undone = (await manager_client.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]
    assert errors_at(undone) == [("CANNOT_UNDO", ["input", "mergeId"])]
    async with db.session() as session:
        total = (
            await session.execute(select(func.sum(col(PointsEntry.delta))).where(col(PointsEntry.org_id) == org.id))
        ).scalar_one()
    assert total == 0


async def test_undo_of_an_unknown_or_foreign_merge_is_not_found(
    client_for: ClientFactory, other_org: Organization, pair: Any
) -> None:
    ann, bea = pair
    ours = await client_for(Role.MANAGER)
    merged = (await ours.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}}))["mergePersonas"]
    rival = await client_for(Role.OWNER, other_org)
    for client, merge_id in (
        (rival, merged["merge"]["id"]),
        (ours, to_global_id("Merge", uuid.uuid4())),
        (ours, ann.gid),
    ):
        payload = (await client.data(UNDO, {"input": {"mergeId": merge_id}}))["undoMerge"]
        assert errors_at(payload) == [("NOT_FOUND", ["input", "mergeId"])]
    bad = (await ours.data(UNDO, {"input": {"mergeId": "%%%"}}))["undoMerge"]
    assert errors_at(bad) == [("INVALID", ["input", "mergeId"])]
    staff = await client_for(Role.STAFF)
    assert codes((await staff.data(UNDO, {"input": {"mergeId": merged["merge"]["id"]}}))["undoMerge"]) == ["FORBIDDEN"]
