"""What the History tab tests share (tests/test_history_*.py): the connections'
names and node types, the timeline and every-connection documents, the phones the
personas are made with, and History, which adds rows of each kind to one persona.

Orders, points, redemptions and merges are made through the write paths the
API uses; messages, surveys, actions and pixel events are added as rows (their
API, recordEvents, is tested with it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
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
    SurveySubmission,
)
from models.base import utcnow
from models.enums import MergeKind, PointsEntryKind
from resolvers.discounts import redeem
from resolvers.ingest import ContactData
from resolvers.merges import merge_personas
from resolvers.orders import LineData, OrderData, OrderOutcome, record_order
from resolvers.points import post_entry
from schema.ids import to_global_id
from tests.factories import MadePersona, days_ago, make_persona

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
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"

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

ANN_PHONE = "(415) 867-5309"
BEA_PHONE = "(646) 783-0134"


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
