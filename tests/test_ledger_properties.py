"""Properties of the ledger under random sequences of everything that moves
points: orders, adjustments, awards, redemptions, reversals, merges, undos,
archives and restores, all sent as GraphQL mutations.

After every step, for every persona: the ledger sum == the cached balance ==
pointsOverview.points == rewardPoints, never below zero; each entry's
balanceAfter is the running sum; the rollups equal a recompute (the world and
these checks are in tests/ledger_world.py). Each step's outcome is the one the
state before it calls for. A merge followed at once by its undo gives both cards
back exactly (timestamps aside).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from app import create_app
from database import Database
from settings import Settings
from tests.ledger_world import DISCOUNT_COSTS, PHONES, Seen, World, card, check_invariants, open_world

AWARDABLE = ["CAMPAIGN_GIFT", "FLOW_GIFT", "COLLECTIBLE", "AUDIENCE_BOOST", "LEGACY_IMPORT"]

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


@pytest.fixture
async def app(db: Database, settings: Settings) -> Starlette:
    return create_app(settings, database=db)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def holder_error(state: Seen) -> list[str]:
    """What a points mutation on this persona answers before looking at amounts."""
    if state.merged:
        return ["ALREADY_MERGED"]
    if state.archived:
        return ["ARCHIVED"]
    return []


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
