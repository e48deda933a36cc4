"""Points mutations through GraphQL, the rules they share: idempotency keys
(a replay returns the first result and writes nothing, other arguments are a conflict,
a refused call frees its key, keys belong to their organization, concurrent replays
write once) and one audit entry per mutation."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from database import Database
from models import IdempotencyRecord, Organization
from permissions.matrix import Role
from resolvers.audit import audit_log
from tests import points_support
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona, make_persona
from tests.points_support import ADJUST, AWARD, REDEEM, REVERSE, award, codes, create_discount, entries_count, ledger

ann = points_support.ann


# Idempotency keys -------------------------------------------------------------------


async def test_an_adjustment_replayed_with_its_key_returns_the_first_result_and_writes_nothing(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    variables = {"input": {"personaId": ann.gid, "delta": 30, "note": "goodwill", "idempotencyKey": "k-1"}}
    first = (await owner_client.data(ADJUST, variables))["adjustPoints"]
    again = (await owner_client.data(ADJUST, variables))["adjustPoints"]
    assert first["userErrors"] == again["userErrors"] == []
    assert again["entry"] == first["entry"]
    assert again["persona"]["rewardPoints"] == 30
    assert await entries_count(db, org) == 1


async def test_the_same_key_with_other_arguments_is_idempotency_conflict(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    base = {"personaId": ann.gid, "delta": 30, "note": "goodwill", "idempotencyKey": "k-2"}
    await owner_client.data(ADJUST, {"input": base})
    for changed in ({"delta": 31}, {"note": "other"}):
        payload = (await owner_client.data(ADJUST, {"input": {**base, **changed}}))["adjustPoints"]
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])
        ]
    # The same key on another mutation is another request too.
    payload = await award(owner_client, ann, 30, idempotencyKey="k-2")
    assert codes(payload) == ["IDEMPOTENCY_CONFLICT"]
    assert await entries_count(db, org) == 1
    assert (await ledger(owner_client, ann))["rewardPoints"] == 30


async def test_a_refused_call_leaves_its_key_free_for_a_retry(owner_client: GraphQLClient, ann: MadePersona) -> None:
    variables = {"input": {"personaId": ann.gid, "delta": -10, "note": "fix", "idempotencyKey": "k-3"}}
    refused = (await owner_client.data(ADJUST, variables))["adjustPoints"]
    assert codes(refused) == ["NEGATIVE_BALANCE"]
    await award(owner_client, ann, 10)
    retried = (await owner_client.data(ADJUST, variables))["adjustPoints"]
    assert codes(retried) == []
    assert retried["persona"]["rewardPoints"] == 0


async def test_keys_belong_to_their_organization(
    client_for: ClientFactory, db: Database, org: Organization, other_org: Organization, ann: MadePersona
) -> None:
    rival_client = await client_for(Role.OWNER, other_org)
    rival = await make_persona(db, other_org, phone="(415) 867-5309")
    await award(rival_client, rival, 10, idempotencyKey="shared-key")
    ours = await award(await client_for(Role.OWNER), ann, 20, idempotencyKey="shared-key")
    assert codes(ours) == []
    assert ours["persona"]["rewardPoints"] == 20


async def test_award_and_redeem_replays_return_the_first_result(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    first = await award(owner_client, ann, 300, idempotencyKey="gift-1")
    again = await award(owner_client, ann, 300, idempotencyKey="gift-1")
    assert again["entry"] == first["entry"]
    discount = await create_discount(owner_client, "Free pre-roll", 100)
    variables = {"input": {"personaId": ann.gid, "discountId": discount, "idempotencyKey": "till-7"}}
    redeemed = (await owner_client.data(REDEEM, variables))["redeemDiscount"]
    replay = (await owner_client.data(REDEEM, variables))["redeemDiscount"]
    assert replay["redemption"] == redeemed["redemption"]
    assert replay["persona"]["rewardPoints"] == 200
    assert await entries_count(db, org) == 2
    other = await create_discount(owner_client, "Free lighter", 100)
    conflict = (await owner_client.data(REDEEM, {"input": {**variables["input"], "discountId": other}}))[
        "redeemDiscount"
    ]
    assert codes(conflict) == ["IDEMPOTENCY_CONFLICT"]
    async with db.session() as session:
        records = (await session.execute(select(IdempotencyRecord))).scalars().all()
    assert sorted(r.operation for r in records) == ["awardPoints", "redeemDiscount"]


async def test_a_blank_or_oversized_key_is_invalid(owner_client: GraphQLClient, ann: MadePersona) -> None:
    for key in ("  ", "k" * 201):
        payload = await award(owner_client, ann, 5, idempotencyKey=key)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "idempotencyKey"])]


async def test_concurrent_replays_of_one_key_write_once(
    client_for: ClientFactory, db: Database, org: Organization, ann: MadePersona
) -> None:
    clients = [await client_for(Role.OWNER) for _ in range(5)]
    variables = {"input": {"personaId": ann.gid, "kind": "CAMPAIGN_GIFT", "points": 40, "idempotencyKey": "race"}}
    bodies = await asyncio.gather(*(c.data(AWARD, variables) for c in clients))
    entries = {b["awardPoints"]["entry"]["id"] for b in bodies}
    assert len(entries) == 1
    assert all(codes(b["awardPoints"]) == [] for b in bodies)
    assert await entries_count(db, org) == 1


# Every mutation is audited ----------------------------------------------------------------


async def test_each_points_mutation_writes_one_audit_entry(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    since = dt.datetime.now(dt.UTC)
    await award(owner_client, ann, 200)
    await owner_client.data(ADJUST, {"input": {"personaId": ann.gid, "delta": 0, "note": "x"}})
    discount = await create_discount(owner_client, "Deal", 100)
    redeemed = await owner_client.data(REDEEM, {"input": {"personaId": ann.gid, "discountId": discount}})
    await owner_client.data(REVERSE, {"input": {"redemptionId": redeemed["redeemDiscount"]["redemption"]["id"]}})
    async with db.session() as session:
        audit = await audit_log(session, org.id, since)
    assert [(a.operation, a.outcome) for a in audit] == [
        ("awardPoints", "OK"),
        ("adjustPoints", "REFUSED"),
        ("createDiscount", "OK"),
        ("redeemDiscount", "OK"),
        ("reverseRedemption", "OK"),
    ]
    assert all(a.actor == f"test {Role.OWNER}" for a in audit)
    assert ann.gid in audit[0].target_ids
