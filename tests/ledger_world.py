"""The world the ledger property tests (tests/test_ledger_properties.py) run in,
and what they check after every step: one organization (five points an order) with
three personas (two loyalty members) and three discounts, made afresh for each example.

`check_invariants` holds, for every persona: the ledger sum == the cached balance ==
pointsOverview.points == rewardPoints, never below zero; each entry's balanceAfter is
the running sum; the rollups equal a recompute. What the cards show then becomes
`World.seen`, the state the next step's expected outcome is computed from.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select, text, update
from sqlmodel import col
from starlette.applications import Starlette

from database import Database
from models import Organization, PointsEntry
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers import rollups
from resolvers.organizations import create_organization
from tests.conftest import GraphQLClient
from tests.factories import TABLES, MadePersona, make_persona

PHONES = ["(415) 867-5309", "(646) 783-0134", "(212) 736-5001"]
DISCOUNT_COSTS = (50, 100, 250)

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
CREATE_DISCOUNT = """
mutation ($input: CreateDiscountInput!) { createDiscount(input: $input) { discount { id } userErrors { code } } }
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


async def card(world: World, persona: MadePersona) -> dict[str, Any]:
    data: dict[str, Any] = (await world.client.data(CARD, {"id": persona.gid}))["persona"]
    return data
