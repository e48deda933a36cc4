"""Points mutations through GraphQL: adjustPoints and awardPoints, with their
userErrors (a note and a nonzero delta, no negative balance, the gift kinds, a bad,
foreign, archived or merged persona), permissions and the entry each writes."""

from __future__ import annotations

import uuid

import pytest

from database import Database
from models import Organization
from permissions.matrix import Role
from resolvers.audit import audit_log
from schema.ids import to_global_id
from tests import points_support
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona, make_persona
from tests.points_support import ADJUST, AWARD, award, codes, entries_count, ledger

MERGE = """
mutation ($input: MergePersonasInput!) {
  mergePersonas(input: $input) { merge { id } userErrors { code } }
}
"""
ARCHIVE = """
mutation ($input: PersonaRefInput!) { archivePersona(input: $input) { userErrors { code } } }
"""

ann = points_support.ann


# adjustPoints ---------------------------------------------------------------------


async def test_an_adjustment_writes_an_entry_with_the_actor_and_the_card_shows_it(
    manager_client: GraphQLClient, ann: MadePersona
) -> None:
    payload = (
        await manager_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 120, "note": "  lost receipt "}})
    )["adjustPoints"]
    assert payload["userErrors"] == []
    assert payload["entry"]["kind"] == "STAFF_ADJUSTMENT"
    assert payload["entry"]["delta"] == 120
    assert payload["entry"]["balanceAfter"] == 120
    assert payload["entry"]["note"] == "lost receipt"
    assert payload["entry"]["actor"] == f"test {Role.MANAGER}"
    assert payload["persona"]["rewardPoints"] == 120
    assert payload["persona"]["pointsOverview"] == {"points": 120, "adjustedByStaff": 120}

    taken = (await manager_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": -20, "note": "typo"}}))[
        "adjustPoints"
    ]
    assert taken["entry"]["balanceAfter"] == 100
    assert taken["persona"]["pointsOverview"] == {"points": 100, "adjustedByStaff": 100}


@pytest.mark.parametrize(
    ("delta", "note", "expected"),
    [
        (0, "why", [("INVALID", ["input", "delta"])]),
        (10, "   ", [("INVALID", ["input", "note"])]),
        (0, "", [("INVALID", ["input", "delta"]), ("INVALID", ["input", "note"])]),
    ],
)
async def test_an_adjustment_needs_a_note_and_a_nonzero_delta(
    manager_client: GraphQLClient,
    db: Database,
    org: Organization,
    ann: MadePersona,
    delta: int,
    note: str,
    expected: list[tuple[str, list[str]]],
) -> None:
    payload = (await manager_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": delta, "note": note}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == expected
    assert payload["persona"] is None
    assert payload["entry"] is None
    assert await entries_count(db, org) == 0


async def test_an_adjustment_below_zero_is_negative_balance_and_writes_nothing(
    manager_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    await award(manager_client, ann, 50)
    payload = (await manager_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": -51, "note": "oops"}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NEGATIVE_BALANCE", ["input", "delta"])]
    assert (await ledger(manager_client, ann))["rewardPoints"] == 50
    assert await entries_count(db, org) == 1


async def test_a_role_without_adjust_points_gets_forbidden_and_nothing_is_written(
    staff_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    payload = (await staff_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 5, "note": "hi"}}))[
        "adjustPoints"
    ]
    assert codes(payload) == ["FORBIDDEN"]
    assert await entries_count(db, org) == 0
    async with db.session() as session:
        audit = await audit_log(session, org.id)
    assert [(a.operation, a.outcome) for a in audit] == [("adjustPoints", "FORBIDDEN")]


async def test_another_organizations_persona_is_not_found(
    client_for: ClientFactory, db: Database, org: Organization, other_org: Organization, ann: MadePersona
) -> None:
    rival = await client_for(Role.OWNER, other_org)
    payload = (await rival.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 5, "note": "x"}}))["adjustPoints"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "personaId"])]
    assert await entries_count(db, org) == 0


@pytest.mark.parametrize(
    ("persona_id", "code"),
    [
        ("not-an-id", "INVALID"),
        (to_global_id("Discount", uuid.UUID(int=7)), "NOT_FOUND"),
        (to_global_id("Persona", uuid.UUID(int=7)), "NOT_FOUND"),
    ],
    ids=["malformed", "a-discount-id", "an-unknown-persona"],
)
async def test_a_bad_persona_id_is_a_user_error_at_its_path(
    owner_client: GraphQLClient, persona_id: str, code: str
) -> None:
    payload = (await owner_client.data(ADJUST, {"input": {"personaId": persona_id, "delta": 5, "note": "x"}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, ["input", "personaId"])]


async def test_points_of_an_archived_or_merged_persona_do_not_move(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    bea = await make_persona(db, org, first_name="Bea", email="bea@example.com", loyalty_member=True)
    merged = await owner_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}})
    assert codes(merged["mergePersonas"]) == []
    payload = (await owner_client.data(ADJUST, {"input": {"personaId": bea.gid, "delta": 5, "note": "x"}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("ALREADY_MERGED", ["input", "personaId"])]

    assert codes((await owner_client.data(ARCHIVE, {"input": {"personaId": ann.gid}}))["archivePersona"]) == []
    payload = (await owner_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 5, "note": "x"}}))[
        "adjustPoints"
    ]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("ARCHIVED", ["input", "personaId"])]
    assert await entries_count(db, org) == 0


# awardPoints -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["CAMPAIGN_GIFT", "FLOW_GIFT", "COLLECTIBLE", "AUDIENCE_BOOST", "LEGACY_IMPORT"])
async def test_each_gift_kind_can_be_awarded(owner_client: GraphQLClient, ann: MadePersona, kind: str) -> None:
    body = await owner_client.data(AWARD, {"input": {"personaId": ann.gid, "kind": kind, "points": 25, "note": "hi"}})
    payload = body["awardPoints"]
    assert payload["userErrors"] == []
    assert payload["entry"]["kind"] == kind
    assert payload["persona"]["rewardPoints"] == 25


@pytest.mark.parametrize("kind", ["ORDER", "VISIT", "REFERRAL_SALE", "REDEMPTION", "STAFF_ADJUSTMENT", "EXPIRATION"])
async def test_other_kinds_cannot_be_awarded(owner_client: GraphQLClient, ann: MadePersona, kind: str) -> None:
    body = await owner_client.data(AWARD, {"input": {"personaId": ann.gid, "kind": kind, "points": 25}})
    assert [(e["code"], e["field"]) for e in body["awardPoints"]["userErrors"]] == [("INVALID", ["input", "kind"])]


@pytest.mark.parametrize("points", [0, -5])
async def test_an_award_is_positive(owner_client: GraphQLClient, ann: MadePersona, points: int) -> None:
    payload = await award(owner_client, ann, points)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "points"])]


async def test_marketing_may_award_but_not_adjust(client_for: ClientFactory, ann: MadePersona) -> None:
    marketing = await client_for(Role.MARKETING)
    assert codes(await award(marketing, ann, 10)) == []
    adjusted = (await marketing.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 5, "note": "x"}}))[
        "adjustPoints"
    ]
    assert codes(adjusted) == ["FORBIDDEN"]
    analyst = await client_for(Role.ANALYST)
    assert codes(await award(analyst, ann, 10)) == ["FORBIDDEN"]
