"""The History tab: each history connection and the timeline, newest first,
with keyset cursors that survive rows arriving between pages.

Orders, points, redemptions and merges are made through the write paths the
API uses; messages, surveys, actions and pixel events are added as rows (their
API, recordEvents, is tested with it). Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from graphql import parse, validate
from sqlalchemy import select, update
from sqlmodel import col

from database import Database
from models import (
    Discount,
    Message,
    Organization,
    Persona,
    PersonaAction,
    PixelEvent,
    PointsEntry,
    Store,
    SurveySubmission,
)
from models.base import utcnow
from models.enums import MergeKind, PointsEntryKind
from resolvers.discounts import redeem
from resolvers.ingest import ContactData
from resolvers.merges import merge_personas
from resolvers.orders import LineData, OrderData, OrderOutcome, record_order
from resolvers.points import post_entry
from schema import schema
from schema.ids import to_global_id
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona, days_ago, make_persona

HISTORY_OPERATION = Path(__file__).parent.parent / "operations" / "history.graphql"

FIELDS = ["points", "orders", "messages", "redemptions", "merges", "surveys", "actions", "pixelEvents"]
TYPENAMES = {
    "points": "PointsEntry",
    "orders": "Order",
    "messages": "Message",
    "redemptions": "Redemption",
    "merges": "Merge",
    "surveys": "SurveySubmission",
    "actions": "PersonaAction",
    "pixelEvents": "PixelEvent",
}
TIMELINE_KINDS = {
    "points": "POINTS",
    "orders": "ORDER",
    "messages": "MESSAGE",
    "redemptions": "REDEMPTION",
    "merges": "MERGE",
    "surveys": "SURVEY",
    "actions": "ACTION",
    "pixelEvents": "PIXEL_EVENT",
}
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"

HISTORY_PAGE = """
query ($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  persona(id: $id) {
    history {
      FIELD(first: $first, after: $after, last: $last, before: $before) {
        totalCount
        PAGE_INFO
        edges { cursor node { id } }
        nodes { id }
      }
    }
  }
}
""".replace("PAGE_INFO", PAGE_INFO)
# One page document per history connection.
PAGE_DOCUMENTS = {name: HISTORY_PAGE.replace("FIELD", name) for name in FIELDS}

TIMELINE_PAGE = """
query ($id: ID!, $first: Int, $after: String, $last: Int, $before: String, $kinds: [TimelineKind!]) {
  persona(id: $id) {
    timeline(first: $first, after: $after, last: $last, before: $before, kinds: $kinds) {
      PAGE_INFO
      edges { cursor node { __typename ... on Node { id } } }
    }
  }
}
""".replace("PAGE_INFO", PAGE_INFO)

EVERY_CONNECTION = """
query ($id: ID!) {
  persona(id: $id) {
    history {
      points(first: 100) { totalCount nodes { id } }
      orders(first: 100) { totalCount nodes { id } }
      messages(first: 100) { totalCount nodes { id } }
      redemptions(first: 100) { totalCount nodes { id } }
      merges(first: 100) { totalCount nodes { id } }
      surveys(first: 100) { totalCount nodes { id } }
      actions(first: 100) { totalCount nodes { id } }
      pixelEvents(first: 100) { totalCount nodes { id } }
    }
  }
}
"""

NODE_DETAILS = """
query ($id: ID!) {
  persona(id: $id) {
    history {
      points {
        nodes {
          kind delta balanceAfter note actor createdAt
          order { externalId }
          redemption { discountName points status discount { name pointsCost } }
        }
      }
      orders {
        nodes {
          externalId placedAt subtotal tax total itemCount pointsEarned
          store { name }
          lines { product brand category quantity unitPrice }
        }
      }
      messages { nodes { direction channel body campaign sentAt } }
      redemptions { nodes { discountName points status redeemedAt actor discount { name pointsCost } } }
      merges { nodes { kind mergedNumber reason actor mergedAt undoneAt survivor { number } } }
      surveys { nodes { surveyName status submittedAt answers { question answer } } }
      actions { nodes { kind campaign detail occurredAt } }
      pixelEvents { nodes { site event url occurredAt } }
    }
  }
}
"""
MERGED_AWAY = (
    "query ($id: ID!) { persona(id: $id) { history { merges { totalCount nodes { survivor { number } } } } } }"
)

ORDERS_WITH_RELATIONS = """
query ($id: ID!) {
  persona(id: $id) {
    history { orders(first: 20) { nodes { lines { product } pointsEarned store { name } } } }
  }
}
"""

ANN_PHONE = "(415) 867-5309"
BEA_PHONE = "(646) 783-0134"
CAL_PHONE = "(212) 736-5001"


@dataclass
class Made:
    at: dt.datetime
    id: uuid.UUID
    gid: str


@dataclass
class History:
    """Adds history rows of each kind to one persona through the write paths."""

    db: Database
    org: Organization
    persona: MadePersona
    phone: str
    made: dict[str, list[Made]] = field(default_factory=lambda: {name: [] for name in FIELDS})
    discount_id: uuid.UUID | None = None
    counter: int = 0

    def _next(self) -> str:
        """A name no other row of the organization uses."""
        self.counter += 1
        return f"{self.persona.number}-{self.counter}"

    def _record(self, name: str, at: dt.datetime, id_: uuid.UUID) -> None:
        self.made[name].append(Made(at, id_, to_global_id(TYPENAMES[name], id_)))

    def newest_first(self, *names: str) -> list[str]:
        rows = [m for name in names or FIELDS for m in self.made[name]]
        return [m.gid for m in sorted(rows, key=lambda m: (m.at, m.id), reverse=True)]

    async def grant(self, points: int, at: dt.datetime) -> None:
        async with self.db.session() as session, session.begin():
            entry = await post_entry(
                session,
                org_id=self.org.id,
                persona_id=self.persona.id,
                kind=PointsEntryKind.STAFF_ADJUSTMENT,
                delta=points,
                note=f"grant {self._next()}",
                actor="test",
                at=at,
            )
        self._record("points", at, entry.id)

    async def add(self, name: str, at: dt.datetime | None = None) -> None:
        """One row of the named connection's kind at `at` (merges happen now)."""
        at = at or utcnow()
        if name == "points":
            await self.grant(1, at)
        elif name == "orders":
            await self._order(at)
        elif name == "redemptions":
            await self._redeem(at)
        elif name == "merges":
            await self._merge()
        else:
            await self._event(name, at)

    async def _order(self, at: dt.datetime) -> None:
        n = self._next()
        line = LineData(
            product=f"Product {n}", quantity=2, unit_price=Decimal("12.50"), brand="Kiva", category="Edibles"
        )
        async with self.db.session() as session, session.begin():
            org = await session.get(Organization, self.org.id)
            assert org is not None
            data = OrderData(
                external_id=f"ticket-{n}",
                source="test-pos",
                customer=ContactData(phone=self.phone),
                placed_at=at,
                subtotal=Decimal("25.00"),
                tax=Decimal("2.50"),
                total=Decimal("27.50"),
                lines=[line],
            )
            result = await record_order(session, org, data, actor="test", path=["order"])
        assert result.outcome is OrderOutcome.RECORDED, [e.message for e in result.errors]
        assert result.order is not None
        assert result.order.persona_id == self.persona.id
        self._record("orders", at, result.order.id)

    async def _redeem(self, at: dt.datetime) -> None:
        async with self.db.session() as session, session.begin():
            if self.discount_id is None:
                discount = Discount(org_id=self.org.id, name="$5 off", points_cost=10)
                session.add(discount)
                await session.flush()
                self.discount_id = discount.id
            loaded = await session.get(Discount, (self.org.id, self.discount_id))
            assert loaded is not None
            redemption = await redeem(
                session, org_id=self.org.id, persona_id=self.persona.id, discount=loaded, actor="test", at=at
            )
            entry_id = (
                await session.execute(
                    select(col(PointsEntry.id)).where(
                        col(PointsEntry.org_id) == self.org.id, col(PointsEntry.redemption_id) == redemption.id
                    )
                )
            ).scalar_one()
        self._record("redemptions", at, redemption.id)
        self._record("points", at, entry_id)

    async def _merge(self) -> None:
        duplicate = await make_persona(self.db, self.org, email=f"duplicate{self._next()}@example.com")
        async with self.db.session() as session, session.begin():
            survivor = await session.get(Persona, (self.org.id, self.persona.id))
            merged = await session.get(Persona, (self.org.id, duplicate.id))
            assert survivor is not None
            assert merged is not None
            merge = await merge_personas(
                session,
                org_id=self.org.id,
                survivor=survivor,
                merged=merged,
                kind=MergeKind.MANUAL,
                reason=None,
                actor="test",
            )
        self._record("merges", merge.merged_at, merge.id)

    async def _event(self, name: str, at: dt.datetime) -> None:
        n = self._next()
        common: dict[str, Any] = {
            "org_id": self.org.id,
            "persona_id": self.persona.id,
            "source": "test-crm",
            "external_id": f"event-{n}",
        }
        row: Message | SurveySubmission | PersonaAction | PixelEvent
        if name == "messages":
            row = Message(
                **common, direction="OUTBOUND", channel="SMS", body=f"Hello {n}", campaign="Spring", sent_at=at
            )
        elif name == "surveys":
            answers: list[dict[str, str | None]] = [{"question": "How likely?", "answer": "9"}, {"question": "Why?"}]
            row = SurveySubmission(**common, survey_name="NPS", status="PARTIAL", answers=answers, submitted_at=at)
        elif name == "actions":
            row = PersonaAction(**common, kind="CLICKED", campaign="Spring", detail=f"link {n}", occurred_at=at)
        else:
            row = PixelEvent(**common, site="shop.example.com", event="page_view", url=f"/p/{n}", occurred_at=at)
        async with self.db.session() as session, session.begin():
            session.add(row)
        self._record(name, at, row.id)


async def given_history(db: Database, org: Organization, phone: str, **fields: Any) -> History:
    persona = await make_persona(db, org, phone=phone, **fields)
    history = History(db, org, persona, phone)
    # Enough points for every redemption the tests make.
    await history.grant(10_000, days_ago(400))
    return history


def connection_of(data: dict[str, Any], name: str) -> dict[str, Any]:
    persona = data["persona"]
    found: dict[str, Any] = persona["timeline"] if name == "timeline" else persona["history"][name]
    return found


async def walk(
    client: GraphQLClient,
    persona_gid: str,
    name: str,
    *,
    forward: bool,
    size: int,
    between_pages: Callable[[int], Awaitable[None]],
) -> list[str]:
    """Every id met walking the connection page by page, newest first (forward)
    or oldest first (backward), with `between_pages` run after each page."""
    document = TIMELINE_PAGE if name == "timeline" else PAGE_DOCUMENTS[name]
    seen: list[str] = []
    cursor: str | None = None
    for page_number in range(50):
        if forward:
            variables = {"id": persona_gid, "first": size, "after": cursor}
        else:
            variables = {"id": persona_gid, "last": size, "before": cursor}
        page = connection_of(await client.data(document, variables), name)
        ids = [edge["node"]["id"] for edge in page["edges"]]
        assert len(ids) <= size
        seen.extend(ids if forward else reversed(ids))
        info = page["pageInfo"]
        if not (info["hasNextPage"] if forward else info["hasPreviousPage"]):
            return seen
        cursor = info["endCursor"] if forward else info["startCursor"]
        await between_pages(page_number)
    raise AssertionError("the walk never ended")


# ---------------------------------------------------------------- listing


async def test_each_connection_lists_the_personas_rows_newest_first_with_total_count(
    db: Database, org: Organization, other_org: Organization, owner_client: GraphQLClient
) -> None:
    # Given a persona with three rows of every kind, days apart, and a neighbour with history of its own
    ann = await given_history(db, org, ANN_PHONE, first_name="Ann")
    neighbour = await given_history(db, org, BEA_PHONE)
    stranger = await given_history(db, other_org, ANN_PHONE)
    for days in (9, 6, 3):
        for name in FIELDS:
            await ann.add(name, days_ago(days))
            await neighbour.add(name, days_ago(days + 0.5))
            await stranger.add(name, days_ago(days + 0.25))

    # When the owner opens the History tab
    history = (await owner_client.data(EVERY_CONNECTION, {"id": ann.persona.gid}))["persona"]["history"]

    # Then each connection holds exactly Ann's rows, newest first, and counts them
    for name in FIELDS:
        expected = ann.newest_first(name)
        assert [n["id"] for n in history[name]["nodes"]] == expected, name
        assert history[name]["totalCount"] == len(expected), name
    assert history["points"]["totalCount"] == 1 + 3 + 3  # the opening grant, 3 grants, 3 redemptions
    assert history["merges"]["totalCount"] == 3


async def test_the_timeline_merges_every_kind_newest_first_and_filters_by_kind(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given two rows of every kind
    ann = await given_history(db, org, ANN_PHONE)
    for days in (8, 2):
        for name in FIELDS:
            await ann.add(name, days_ago(days))

    # When the timeline is read whole, and filtered to orders and messages
    everything = await owner_client.data(TIMELINE_PAGE, {"id": ann.persona.gid, "first": 100})
    some = await owner_client.data(TIMELINE_PAGE, {"id": ann.persona.gid, "first": 100, "kinds": ["ORDER", "MESSAGE"]})
    none = await owner_client.data(TIMELINE_PAGE, {"id": ann.persona.gid, "kinds": []})

    # Then it holds every row once, newest first across the tables, each as its own type
    edges = everything["persona"]["timeline"]["edges"]
    assert [e["node"]["id"] for e in edges] == ann.newest_first()
    kinds_by_id = {m.gid: TYPENAMES[name] for name in FIELDS for m in ann.made[name]}
    assert all(e["node"]["__typename"] == kinds_by_id[e["node"]["id"]] for e in edges)
    assert [e["node"]["id"] for e in some["persona"]["timeline"]["edges"]] == ann.newest_first("orders", "messages")
    assert none["persona"]["timeline"]["edges"] == []


async def test_history_nodes_show_their_fields_and_related_records(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given a loyalty member (1 point per dollar, 5 per visit) with one of everything, bought at a store
    async with db.session() as session, session.begin():
        await session.execute(update(Organization).where(col(Organization.id) == org.id).values(points_per_order=5))
        store = Store(org_id=org.id, name="Mission St")
        session.add(store)
    ann = await given_history(db, org, ANN_PHONE, first_name="Ann", loyalty_member=True)
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        lines = [
            LineData(
                product="Camino Gummies", quantity=2, unit_price=Decimal("20.00"), brand="Kiva", category="Edibles"
            ),
            LineData(product="Blue Dream 3.5g", quantity=1, unit_price=Decimal("35.50")),
        ]
        data = OrderData(
            external_id="T-100",
            source="test-pos",
            customer=ContactData(phone=ANN_PHONE),
            placed_at=days_ago(3),
            subtotal=Decimal("75.50"),
            tax=Decimal("7.55"),
            total=Decimal("83.05"),
            lines=lines,
            store_id=store.id,
        )
        result = await record_order(session, loaded, data, actor="pos", path=["order"])
        assert result.outcome is OrderOutcome.RECORDED
    for name in ("redemptions", "merges", "messages", "surveys", "actions", "pixelEvents"):
        await ann.add(name, days_ago(2))

    # When the owner reads every node's fields
    history = (await owner_client.data(NODE_DETAILS, {"id": ann.persona.gid}))["persona"]["history"]

    # Then the order shows its store, its lines in ticket order, exact money and what it earned
    (order,) = history["orders"]["nodes"]
    assert order["store"] == {"name": "Mission St"}
    assert order["lines"] == [
        {"product": "Camino Gummies", "brand": "Kiva", "category": "Edibles", "quantity": 2, "unitPrice": "20.00"},
        {"product": "Blue Dream 3.5g", "brand": None, "category": None, "quantity": 1, "unitPrice": "35.50"},
    ]
    assert (order["subtotal"], order["tax"], order["total"], order["itemCount"]) == ("75.50", "7.55", "83.05", 3)
    assert order["pointsEarned"] == 75 + 5
    # ... and the ledger entries it earned point back at it
    from_order = [p for p in history["points"]["nodes"] if p["order"] is not None]
    assert sorted((p["kind"], p["delta"]) for p in from_order) == [("ORDER", 75), ("VISIT", 5)]
    assert {p["order"]["externalId"] for p in from_order} == {"T-100"}
    # ... the redemption entry points at its redemption and discount
    (spent,) = [p for p in history["points"]["nodes"] if p["kind"] == "REDEMPTION"]
    assert spent["delta"] == -10
    assert spent["redemption"] == {
        "discountName": "$5 off",
        "points": 10,
        "status": "REDEEMED",
        "discount": {"name": "$5 off", "pointsCost": 10},
    }
    balances = [p["balanceAfter"] for p in reversed(history["points"]["nodes"])]
    assert balances[-1] == 10_000 + 80 - 10
    (redemption,) = history["redemptions"]["nodes"]
    assert redemption["actor"] == "test"
    # ... the merge names the survivor, and the merged-away persona sees it too
    (merge,) = history["merges"]["nodes"]
    assert merge["kind"] == "MANUAL"
    assert merge["survivor"] == {"number": ann.persona.number}
    assert merge["undoneAt"] is None
    (message,) = history["messages"]["nodes"]
    assert (message["direction"], message["channel"], message["campaign"]) == ("OUTBOUND", "SMS", "Spring")
    (survey,) = history["surveys"]["nodes"]
    assert survey["status"] == "PARTIAL"
    assert survey["answers"] == [{"question": "How likely?", "answer": "9"}, {"question": "Why?", "answer": None}]
    (action,) = history["actions"]["nodes"]
    assert (action["kind"], action["campaign"]) == ("CLICKED", "Spring")
    (pixel,) = history["pixelEvents"]["nodes"]
    assert (pixel["site"], pixel["event"]) == ("shop.example.com", "page_view")


async def test_a_merged_away_persona_lists_the_merge_that_took_it(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given Ann survives a merge with Bea
    ann = await given_history(db, org, ANN_PHONE)
    bea = await make_persona(db, org, phone=BEA_PHONE)
    async with db.session() as session, session.begin():
        survivor = await session.get(Persona, (org.id, ann.persona.id))
        merged = await session.get(Persona, (org.id, bea.id))
        assert survivor is not None
        assert merged is not None
        await merge_personas(
            session, org_id=org.id, survivor=survivor, merged=merged, kind=MergeKind.MANUAL, reason=None, actor="x"
        )

    # When Bea's card is opened
    history = (await owner_client.data(MERGED_AWAY, {"id": bea.gid}))["persona"]["history"]

    # Then her merges list the merge into Ann
    assert history["merges"] == {"totalCount": 1, "nodes": [{"survivor": {"number": ann.persona.number}}]}


# ---------------------------------------------------------------- page walks


@pytest.mark.parametrize("name", [*FIELDS, "timeline"])
async def test_walking_forwards_and_backwards_meets_every_row_once_while_rows_arrive(
    db: Database, org: Organization, owner_client: GraphQLClient, name: str
) -> None:
    # Given seven rows of the kind (of every kind, for the timeline), spread over a week
    ann = await given_history(db, org, ANN_PHONE)
    kinds = FIELDS if name == "timeline" else [name]
    oldest = days_ago(8)
    for day in range(7, 0, -1):
        for kind in kinds:
            await ann.add(kind, days_ago(day))
    before_walk = await owner_client.data(
        TIMELINE_PAGE if name == "timeline" else PAGE_DOCUMENTS[name], {"id": ann.persona.gid, "first": 100}
    )
    existing = [e["node"]["id"] for e in connection_of(before_walk, name)["edges"]]
    assert existing == ann.newest_first(*([] if name == "timeline" else [name]))
    middle = oldest + (utcnow() - oldest) / 2

    async def rows_arrive(page_number: int) -> None:
        # A newer row, and one dated inside the range being walked (for the
        # first pages only, so that a walk towards the newest end finishes).
        if page_number >= 4:
            return
        await ann.add(kinds[page_number % len(kinds)], utcnow())
        await ann.add(kinds[(page_number + 3) % len(kinds)], middle)

    for forward in (True, False):
        # When the owner walks it a few rows at a time while new rows arrive between pages
        size = 7 if name == "timeline" else 3
        seen = await walk(owner_client, ann.persona.gid, name, forward=forward, size=size, between_pages=rows_arrive)

        # Then every row that was there is met exactly once, and nothing twice
        assert len(seen) == len(set(seen)), f"a row came twice walking {'forwards' if forward else 'backwards'}"
        assert set(existing) <= set(seen), "a row was skipped"
        met = [gid for gid in seen if gid in set(existing)]
        assert met == (existing if forward else list(reversed(existing)))


# ---------------------------------------------------------------- bad input and permissions


BAD_PAGES = [
    pytest.param({"first": 5, "after": "not-a-cursor"}, id="malformed-cursor"),
    pytest.param({"first": 5, "after": "bm9wZQ"}, id="base64-but-not-a-cursor"),
    pytest.param({"last": 5, "before": "%%%"}, id="malformed-before"),
    pytest.param({"first": 5, "last": 5}, id="first-and-last"),
    pytest.param({"first": 101}, id="first-over-100"),
    pytest.param({"last": 101}, id="last-over-100"),
    pytest.param({"first": -1}, id="negative-first"),
]


@pytest.mark.parametrize("arguments", BAD_PAGES)
@pytest.mark.parametrize("name", ["orders", "merges", "timeline"])
async def test_bad_page_arguments_are_bad_user_input(
    db: Database, org: Organization, owner_client: GraphQLClient, name: str, arguments: dict[str, Any]
) -> None:
    # Given a persona with history
    ann = await given_history(db, org, ANN_PHONE)
    await ann.add("orders", days_ago(1))

    # When a page is asked for with bad arguments
    document = TIMELINE_PAGE if name == "timeline" else PAGE_DOCUMENTS[name]
    response = await owner_client.post(document, {"id": ann.persona.gid, **arguments})

    # Then that connection is null with one BAD_USER_INPUT error, never a 500
    assert response.status_code == 200
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    path = ["persona", "timeline"] if name == "timeline" else ["persona", "history", name]
    assert body["errors"][0]["path"] == path
    assert connection_of(body["data"], name) is None


async def test_connections_a_role_may_not_see_are_forbidden_and_the_rest_renders(
    db: Database, org: Organization, staff_client: GraphQLClient
) -> None:
    # Given a persona with orders and messages
    ann = await given_history(db, org, ANN_PHONE)
    await ann.add("orders", days_ago(2))
    await ann.add("messages", days_ago(1))

    # When staff (no VIEW_ENGAGEMENT) open the History tab
    body = await staff_client.execute(EVERY_CONNECTION, {"id": ann.persona.gid})
    timeline = await staff_client.execute(TIMELINE_PAGE, {"id": ann.persona.gid})

    # Then engagement history is null with FORBIDDEN, and orders and points still render
    history = body["data"]["persona"]["history"]
    forbidden = {tuple(e["path"]) for e in body["errors"] if e["extensions"]["code"] == "FORBIDDEN"}
    engagement = {"messages", "surveys", "actions", "pixelEvents"}
    assert forbidden == {("persona", "history", name) for name in engagement}
    assert all(history[name] is None for name in engagement)
    assert history["orders"]["totalCount"] == 1
    assert history["points"]["totalCount"] == 1
    assert timeline["data"]["persona"]["timeline"] is None
    assert [e["extensions"]["code"] for e in timeline["errors"]] == ["FORBIDDEN"]


async def test_another_organizations_persona_and_history_stay_invisible(
    db: Database, org: Organization, other_org: Organization, client_for: ClientFactory
) -> None:
    # Given a rival organization's persona with history
    rival = await given_history(db, other_org, ANN_PHONE)
    for name in FIELDS:
        await rival.add(name, days_ago(1))
    ours = await given_history(db, org, ANN_PHONE)
    client = await client_for(organization=org)

    # When our key asks for their persona's history and timeline
    body = await client.execute(EVERY_CONNECTION, {"id": rival.persona.gid})
    timeline = await client.execute(TIMELINE_PAGE, {"id": rival.persona.gid})
    own = (await client.data(TIMELINE_PAGE, {"id": ours.persona.gid, "first": 100}))["persona"]["timeline"]

    # Then it does not exist for us, and none of their rows reach our timeline
    assert body["data"]["persona"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert timeline["data"]["persona"] is None
    theirs = {gid for name in FIELDS for gid in rival.newest_first(name)}
    assert not theirs & {e["node"]["id"] for e in own["edges"]}


# ---------------------------------------------------------------- statements and the operation document


async def test_an_orders_page_uses_as_many_statements_for_60_orders_as_for_3(
    db: Database, org: Organization, owner_client: GraphQLClient, statements: Any
) -> None:
    # Given one loyalty member with 3 orders and another with 60, all at a store
    async with db.session() as session, session.begin():
        session.add(Store(org_id=org.id, name="Mission St"))
    few = await given_history(db, org, ANN_PHONE, loyalty_member=True)
    many = await given_history(db, org, BEA_PHONE, loyalty_member=True)
    for n in range(3):
        await few.add("orders", days_ago(n + 1))
    for n in range(60):
        await many.add("orders", days_ago(n + 1))

    async def count(persona: MadePersona) -> int:
        statements.count, statements.active = 0, True
        data = await owner_client.data(ORDERS_WITH_RELATIONS, {"id": persona.gid})
        statements.active = False
        assert all(o["pointsEarned"] == 25 and o["lines"] for o in data["persona"]["history"]["orders"]["nodes"])
        return int(statements.count)

    # When each one's orders page is read with lines, points earned and store
    await count(few.persona)  # the key's first use also records when it was used
    few_statements, many_statements = await count(few.persona), await count(many.persona)

    # Then both take the same number of statements
    assert few_statements == many_statements


def test_the_history_operation_document_is_valid_against_the_schema() -> None:
    document = parse(HISTORY_OPERATION.read_text())
    assert validate(schema._schema, document) == []


async def test_the_history_operation_renders_the_tab_in_constant_statements(
    db: Database, org: Organization, owner_client: GraphQLClient, statements: Any
) -> None:
    # Given one persona with 2 rows of every kind and another with 21, arriving in rounds
    few = await given_history(db, org, ANN_PHONE, loyalty_member=True)
    many = await given_history(db, org, BEA_PHONE, loyalty_member=True)
    for history, rounds in ((few, 2), (many, 21)):
        for _ in range(rounds):
            for name in FIELDS:
                await history.add(name)
    operation = HISTORY_OPERATION.read_text()

    async def run(persona: MadePersona) -> tuple[int, dict[str, Any]]:
        statements.count, statements.active = 0, True
        data = await owner_client.data(operation, {"id": persona.gid})
        statements.active = False
        return int(statements.count), data

    # When the History tab document runs for each
    await run(few.persona)  # the key's first use also records when it was used
    few_statements, few_data = await run(few.persona)
    many_statements, many_data = await run(many.persona)

    # Then every connection renders its first page, and the statement count does not grow
    for name in FIELDS:
        assert few_data["persona"]["history"][name]["totalCount"] >= 2
        assert len(many_data["persona"]["history"][name]["edges"]) == 20
    assert len(many_data["persona"]["timeline"]["edges"]) == 20
    assert many_statements == few_statements
