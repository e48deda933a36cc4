"""Properties of the ledger under random sequences of everything that moves
points: orders, adjustments, awards, redemptions, reversals, merges, undos,
archives and restores, all sent as GraphQL mutations.

After every step, for every persona: the ledger sum == the cached balance ==
pointsOverview.points == rewardPoints, never below zero; each entry's
balanceAfter is the running sum; the rollups equal a recompute. Each step's
outcome is the one the state before it calls for. A merge followed at once
by its undo gives both cards back exactly (timestamps aside).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from sqlmodel import col
from starlette.applications import Starlette

from app import create_app
from database import Database
from models import Organization, PointsEntry
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers import rollups
from resolvers.organizations import create_organization
from settings import Settings
from tests.conftest import GraphQLClient
from tests.factories import TABLES, MadePersona, make_persona

PHONES = ["(415) 867-5309", "(646) 783-0134", "(212) 736-5001"]
DISCOUNT_COSTS = (50, 100, 250)
AWARDABLE = ["CAMPAIGN_GIFT", "FLOW_GIFT", "COLLECTIBLE", "AUDIENCE_BOOST", "LEGACY_IMPORT"]

STATE = """
query ($a: ID!, $b: ID!, $c: ID!) {
  a: persona(id: $a) { ...state }
  b: persona(id: $b) { ...state }
  c: persona(id: $c) { ...state }
}
fragment state on Persona {
  rewardPoints archivedAt mergedInto { number }
  pointsOverview { points }
}
"""
CARD = """
query ($id: ID!) {
  persona(id: $id) {
    id number firstName email phone archivedAt loyaltyMember mergedInto { number }
    rewardPoints
    optIns { channel status source }
    shoppingHabits { spendAllTime salesCount averageOrder itemsPerOrder preferredProduct { name count } }
    customAttributes { key value source }
    tags
    pointsOverview {
      spentAllTime spentAsMember points pointsRedeemed adjustedByStaff boostedByAudience giftedByCampaign
      giftedByFlow expired legacyImported visitPoints collectibles referralSales lastRedemptionDiscount
    }
    history {
      points(first: 100) { totalCount nodes { id kind delta balanceAfter note actor } }
      orders(first: 100) { totalCount nodes { id externalId pointsEarned } }
      redemptions(first: 100) { totalCount nodes { id points status } }
    }
  }
}
"""
ORDER = """
mutation ($input: RecordOrdersInput!) { recordOrders(input: $input) { results { outcome userErrors { code } } } }
"""
ADJUST = """
mutation ($input: AdjustPointsInput!) { adjustPoints(input: $input) { userErrors { code } } }
"""
AWARD = """
mutation ($input: AwardPointsInput!) { awardPoints(input: $input) { userErrors { code } } }
"""
REDEEM = """
mutation ($input: RedeemDiscountInput!) {
  redeemDiscount(input: $input) { redemption { id points } userErrors { code } }
}
"""
REVERSE = """
mutation ($input: ReverseRedemptionInput!) {
  reverseRedemption(input: $input) { redemption { status } userErrors { code } }
}
"""
CREATE_DISCOUNT = """
mutation ($input: CreateDiscountInput!) { createDiscount(input: $input) { discount { id } userErrors { code } } }
"""
MERGE = """
mutation ($input: MergePersonasInput!) { mergePersonas(input: $input) { merge { id } userErrors { code } } }
"""
UNDO = """
mutation ($input: UndoMergeInput!) { undoMerge(input: $input) { merge { undoneAt } userErrors { code } } }
"""
ARCHIVE = """
mutation ($input: PersonaRefInput!) { archivePersona(input: $input) { userErrors { code } } }
"""
RESTORE = """
mutation ($input: PersonaRefInput!) { restorePersona(input: $input) { userErrors { code } } }
"""


@dataclass
class Seen:
    points: int
    archived: bool
    merged: bool


@dataclass
class World:
    """One organization, three personas (two loyalty members), three discounts."""

    db: Database
    org_id: uuid.UUID
    client: GraphQLClient
    personas: list[MadePersona]
    discounts: dict[int, str]
    redemptions: list[str] = field(default_factory=list)
    reversed: set[str] = field(default_factory=set)
    merges: list[str] = field(default_factory=list)
    orders: int = 0
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
async def app(db: Database, settings: Settings) -> Starlette:
    return create_app(settings, database=db)


async def reset(db: Database) -> None:
    """Empty every table: each example starts from nothing, as each test does."""
    # DELETE rather than TRUNCATE: on a few rows it is much faster on PostgreSQL.
    async with db.engine.begin() as conn:
        for table in TABLES:
            await conn.execute(text(f'DELETE FROM "{table}"'))


async def open_world(db: Database, app: Starlette, http: httpx.AsyncClient) -> World:
    await reset(db)
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug="acme", name="Acme")
        await session.execute(update(Organization).where(col(Organization.id) == org.id).values(points_per_order=5))
        issued = await issue_key(session, org_id=org.id, role=Role.OWNER, name="owner")
    http.headers["Authorization"] = f"Bearer {issued.plaintext}"
    client = GraphQLClient(http=http, role=Role.OWNER)
    personas = [
        await make_persona(db, org, first_name=f"P{n}", phone=phone, loyalty_member=n < 2)
        for n, phone in enumerate(PHONES)
    ]
    discounts = {}
    for cost in DISCOUNT_COSTS:
        body = await client.data(CREATE_DISCOUNT, {"input": {"name": f"{cost} off", "pointsCost": cost}})
        discounts[cost] = body["createDiscount"]["discount"]["id"]
    world = World(db, org.id, client, personas, discounts)
    await check_invariants(world)
    return world


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


# Observations and invariants ----------------------------------------------------------------


async def observe(world: World) -> list[Seen]:
    ids = {k: p.gid for k, p in zip("abc", world.personas, strict=True)}
    data = await world.client.data(STATE, ids)
    seen = []
    for k in "abc":
        p = data[k]
        assert p["rewardPoints"] == p["pointsOverview"]["points"]
        seen.append(Seen(p["rewardPoints"], p["archivedAt"] is not None, p["mergedInto"] is not None))
    return seen


async def check_invariants(world: World) -> list[Seen]:
    """Check every invariant; what the card shows now becomes world.seen."""
    seen = await observe(world)
    async with world.db.session() as session:
        for persona, state in zip(world.personas, seen, strict=True):
            entries = await session.execute(
                select(col(PointsEntry.delta), col(PointsEntry.balance_after))
                .where(col(PointsEntry.org_id) == world.org_id, col(PointsEntry.persona_id) == persona.id)
                .order_by(col(PointsEntry.created_at), col(PointsEntry.id))
            )
            running = 0
            for delta, balance_after in entries.all():
                running += delta
                assert balance_after == running, "balanceAfter is the running sum"
                assert running >= 0, "the balance never goes below zero"
            kept = await rollups.stored(session, world.org_id, persona.id)
            fresh = await rollups.recompute(session, world.org_id, persona.id)
            assert kept.figures == fresh.figures, "rollups == recompute"
            assert kept.purchase_counts == fresh.purchase_counts
            assert running == kept.figures["points_balance"] == state.points, "ledger sum == balance == overview"
            assert state.points >= 0
    world.seen = seen
    return seen


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def holder_error(state: Seen) -> list[str]:
    """What a points mutation on this persona answers before looking at amounts."""
    if state.merged:
        return ["ALREADY_MERGED"]
    if state.archived:
        return ["ARCHIVED"]
    return []


async def card(world: World, persona: MadePersona) -> dict[str, Any]:
    data: dict[str, Any] = (await world.client.data(CARD, {"id": persona.gid}))["persona"]
    return data


# Steps ---------------------------------------------------------------------------------------


async def order(world: World, i: int, subtotal_cents: int) -> None:
    world.orders += 1
    amount = f"{subtotal_cents // 100}.{subtotal_cents % 100:02d}"
    body = await world.client.data(
        ORDER,
        {
            "input": {
                "orders": [
                    {
                        "externalId": f"t-{world.orders}",
                        "source": "prop",
                        "customer": {"phone": PHONES[i]},
                        "placedAt": dt.datetime.now(dt.UTC).isoformat(),
                        "subtotal": amount,
                        "tax": "0.00",
                        "total": amount,
                        "lines": [{"product": f"Item {i}", "quantity": 1, "unitPrice": amount}],
                    }
                ]
            }
        },
    )
    assert body["recordOrders"]["results"][0]["outcome"] == "RECORDED"
    await check_invariants(world)


async def adjust(world: World, i: int, delta: int) -> None:
    before = world.seen[i]
    body = await world.client.data(
        ADJUST, {"input": {"personaId": world.personas[i].gid, "delta": delta, "note": "prop"}}
    )
    expected = holder_error(before) or (
        ["INVALID"] if delta == 0 else ["NEGATIVE_BALANCE"] if before.points + delta < 0 else []
    )
    assert codes(body["adjustPoints"]) == expected
    assert (await check_invariants(world))[i].points == before.points + (0 if expected else delta)


async def award(world: World, i: int, kind: str, points: int) -> None:
    before = world.seen[i]
    body = await world.client.data(
        AWARD, {"input": {"personaId": world.personas[i].gid, "kind": kind, "points": points}}
    )
    expected = holder_error(before)
    assert codes(body["awardPoints"]) == expected
    assert (await check_invariants(world))[i].points == before.points + (0 if expected else points)


async def redeem(world: World, i: int, cost: int) -> None:
    before = world.seen[i]
    body = await world.client.data(
        REDEEM, {"input": {"personaId": world.personas[i].gid, "discountId": world.discounts[cost]}}
    )
    expected = holder_error(before) or (["INSUFFICIENT_POINTS"] if before.points < cost else [])
    assert codes(body["redeemDiscount"]) == expected
    assert (await check_invariants(world))[i].points == before.points - (0 if expected else cost)
    if not expected:
        world.redemptions.append(body["redeemDiscount"]["redemption"]["id"])


async def reverse(world: World, k: int) -> None:
    if not world.redemptions:
        return
    redemption = world.redemptions[k % len(world.redemptions)]
    total_before = sum(s.points for s in world.seen)
    body = await world.client.data(REVERSE, {"input": {"redemptionId": redemption}})
    if redemption in world.reversed:
        assert codes(body["reverseRedemption"]) == ["INVALID"]
        assert sum(s.points for s in await check_invariants(world)) == total_before
        return
    assert codes(body["reverseRedemption"]) == []
    assert body["reverseRedemption"]["redemption"]["status"] == "REVERSED"
    world.reversed.add(redemption)
    assert sum(s.points for s in await check_invariants(world)) > total_before


async def merge(world: World, i: int, j: int) -> bool:
    seen = world.seen
    body = await world.client.data(
        MERGE, {"input": {"survivorId": world.personas[i].gid, "mergedId": world.personas[j].gid}}
    )
    expected = ["SAME_PERSONA"] if i == j else ["ALREADY_MERGED"] if seen[i].merged or seen[j].merged else []
    assert codes(body["mergePersonas"]) == expected
    after = await check_invariants(world)
    if expected:
        return False
    world.merges.append(body["mergePersonas"]["merge"]["id"])
    assert after[i].points == seen[i].points + seen[j].points
    assert after[j].points == 0
    assert after[j].merged
    return True


async def undo(world: World, k: int) -> None:
    if not world.merges:
        return
    merge_id = world.merges[k % len(world.merges)]
    total_before = sum(s.points for s in world.seen)
    body = await world.client.data(UNDO, {"input": {"mergeId": merge_id}})
    assert codes(body["undoMerge"]) in ([], ["CANNOT_UNDO"])
    # Points only change hands when a merge is undone.
    assert sum(s.points for s in await check_invariants(world)) == total_before


async def archive(world: World, i: int) -> None:
    before = world.seen[i]
    body = await world.client.data(ARCHIVE, {"input": {"personaId": world.personas[i].gid}})
    expected = ["ALREADY_MERGED"] if before.merged else ["ARCHIVED"] if before.archived else []
    assert codes(body["archivePersona"]) == expected
    assert (await check_invariants(world))[i].archived == (before.archived or not expected)


async def restore(world: World, i: int) -> None:
    before = world.seen[i]
    body = await world.client.data(RESTORE, {"input": {"personaId": world.personas[i].gid}})
    expected = ["ALREADY_MERGED"] if before.merged else [] if before.archived else ["INVALID"]
    assert codes(body["restorePersona"]) == expected
    after = (await check_invariants(world))[i]
    assert after.points >= before.points
    assert after.archived == (before.archived and bool(expected))


async def merge_then_undo(world: World, i: int, j: int) -> None:
    seen = world.seen
    if i == j or seen[i].merged or seen[j].merged:
        return
    survivor, merged = world.personas[i], world.personas[j]
    before = [await card(world, survivor), await card(world, merged)]
    assert await merge(world, i, j)
    body = await world.client.data(UNDO, {"input": {"mergeId": world.merges[-1]}})
    assert codes(body["undoMerge"]) == []
    assert body["undoMerge"]["merge"]["undoneAt"] is not None
    after = [await card(world, survivor), await card(world, merged)]
    assert after == before, "merge then undo gives both cards back exactly"
    await check_invariants(world)


persona = st.integers(0, 2)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("order"), persona, st.integers(0, 30_000)),
        st.tuples(st.just("adjust"), persona, st.integers(-300, 300)),
        st.tuples(st.just("award"), persona, st.sampled_from(AWARDABLE), st.integers(1, 300)),
        st.tuples(st.just("redeem"), persona, st.sampled_from(DISCOUNT_COSTS)),
        st.tuples(st.just("reverse"), st.integers(0, 5)),
        st.tuples(st.just("merge"), persona, persona),
        st.tuples(st.just("undo"), st.integers(0, 3)),
        st.tuples(st.just("archive"), persona),
        st.tuples(st.just("restore"), persona),
        st.tuples(st.just("merge_then_undo"), persona, persona),
    ),
    min_size=1,
    max_size=8,
)

STEPS: dict[str, Any] = {
    "order": order,
    "adjust": adjust,
    "award": award,
    "redeem": redeem,
    "reverse": reverse,
    "merge": merge,
    "undo": undo,
    "archive": archive,
    "restore": restore,
    "merge_then_undo": merge_then_undo,
}


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
async def test_the_ledger_holds_under_any_sequence_of_mutations(
    db: Database, app: Starlette, http: httpx.AsyncClient, steps: list[tuple[Any, ...]]
) -> None:
    world = await open_world(db, app, http)
    for name, *args in steps:
        await STEPS[name](world, *args)  # each step ends by checking every invariant


merge_pairs = st.lists(st.tuples(persona, persona).filter(lambda p: p[0] != p[1]), min_size=1, max_size=2)
preparation = st.lists(
    st.one_of(
        st.tuples(st.just("order"), persona, st.integers(0, 30_000)),
        st.tuples(st.just("award"), persona, st.sampled_from(AWARDABLE), st.integers(1, 300)),
        st.tuples(st.just("redeem"), persona, st.sampled_from(DISCOUNT_COSTS)),
    ),
    max_size=6,
)


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(preparation=preparation, pairs=merge_pairs)
async def test_a_merge_then_its_undo_gives_both_cards_back(
    db: Database, app: Starlette, http: httpx.AsyncClient, preparation: list[tuple[Any, ...]], pairs: list[Any]
) -> None:
    world = await open_world(db, app, http)
    for name, *args in preparation:
        await STEPS[name](world, *args)
    for i, j in pairs:
        await merge_then_undo(world, i, j)
