"""The points postings and rollup changes of a whole batch, written set-wise.

A batch (resolvers/ingest_batch.py, resolvers/orders_batch.py) collects what
each row posts and buys, in row order; write() then sends one upsert of the
persona_rollups rows (new personas' rows, and the sums of every persona's
points and shopping figures) that returns the balances, one insert of the
ledger entries with their running balance_after, and one upsert of the
purchase counts. Ledger sum == cached balance holds as with post_entries: the
balance moves in the same transaction as the entries, by their sum.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, case, or_
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import new_id
from models.enums import PointsEntryKind
from models.tables import ENTRIES, PURCHASE_COUNTS, ROLLUPS
from resolvers.points import KIND_COLUMN
from resolvers.upsert import by_uuid, by_uuid_first, insert_rows

SHOPPING_SUMS = (
    "orders_count",
    "items_count",
    "spend_total_cents",
    "spend_subtotal_cents",
    "spend_member_subtotal_cents",
)
ADDED_UP = ("points_balance", *KIND_COLUMN.values(), *SHOPPING_SUMS)


@dataclass
class Posting:
    """One ledger entry to be. Its id is given when written, in posting order, so that
    (created_at, id) order is posting order and balance_after is the running sum."""

    persona_id: uuid.UUID
    kind: PointsEntryKind
    delta: int
    created_at: dt.datetime
    note: str | None = None
    actor: str | None = None
    order_id: uuid.UUID | None = None
    id: uuid.UUID | None = None


@dataclass
class Shopping:
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SHOPPING_SUMS, 0))
    first_order_at: dt.datetime | None = None
    last_order_at: dt.datetime | None = None


@dataclass
class PurchaseTally:
    order_count: int
    last_purchased_at: dt.datetime
    created_at: dt.datetime


class RollupBatch:
    def __init__(self) -> None:
        self.postings: list[Posting] = []
        self.shopping: dict[uuid.UUID, Shopping] = {}
        self.created: set[uuid.UUID] = set()
        self.counts: dict[tuple[uuid.UUID, str, str], PurchaseTally] = {}

    def create(self, persona_id: uuid.UUID) -> None:
        """The persona is new: its rollup row is inserted."""
        self.created.add(persona_id)

    def post(
        self,
        persona_id: uuid.UUID,
        kind: PointsEntryKind,
        delta: int,
        at: dt.datetime,
        *,
        note: str | None = None,
        actor: str | None = None,
        order_id: uuid.UUID | None = None,
    ) -> Posting:
        """Append an entry; postings are made in time order (`at` never goes back)."""
        posting = Posting(persona_id, kind, delta, at, note, actor, order_id)
        self.postings.append(posting)
        return posting

    def add_order(self, order: dict[str, Any], names: dict[str, set[str]]) -> None:
        """Fold an order (a row of the orders table) into its persona's figures and purchase counts."""
        persona_id, placed = order["persona_id"], order["placed_at"]
        shopping = self.shopping.setdefault(persona_id, Shopping())
        sums = shopping.sums
        sums["orders_count"] += 1
        sums["items_count"] += order["item_count"]
        sums["spend_total_cents"] += order["total_cents"]
        sums["spend_subtotal_cents"] += order["subtotal_cents"]
        sums["spend_member_subtotal_cents"] += order["subtotal_cents"] if order["member_at_order"] else 0
        if shopping.first_order_at is None or placed < shopping.first_order_at:
            shopping.first_order_at = placed
        if shopping.last_order_at is None or placed > shopping.last_order_at:
            shopping.last_order_at = placed
        for dimension, found in names.items():
            for name in found:
                tally = self.counts.get((persona_id, dimension, name))
                if tally is None:
                    self.counts[(persona_id, dimension, name)] = PurchaseTally(1, placed, order["created_at"])
                else:
                    tally.order_count += 1
                    tally.last_purchased_at = max(tally.last_purchased_at, placed)

    async def write(self, session: AsyncSession, org_id: uuid.UUID) -> None:
        """Rollups (one upsert returning the balances), then the entries, then the purchase counts."""
        self.postings = [posting for posting in self.postings if posting.delta]  # e.g. a boost of no points
        points: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
        for posting in self.postings:
            mine = points[posting.persona_id]
            column = KIND_COLUMN[posting.kind]
            mine[column] = mine.get(column, 0) + posting.delta
        persona_ids = sorted(
            self.created | self.shopping.keys() | points.keys(), key=by_uuid
        )  # one lock order: no deadlocks
        if not persona_ids:
            return
        rows = [self._rollup_row(org_id, persona_id, points.get(persona_id, {})) for persona_id in persona_ids]
        returned = await insert_rows(session, _rollup_upsert, rows)
        balances: dict[uuid.UUID, int] = {row.persona_id: row.points_balance for row in returned or []}
        await self._write_entries(session, org_id, balances, {p: sum(d.values()) for p, d in points.items()})
        await self._write_counts(session, org_id)

    def _rollup_row(self, org_id: uuid.UUID, persona_id: uuid.UUID, points: dict[str, int]) -> dict[str, Any]:
        shopping = self.shopping.get(persona_id) or Shopping()
        row: dict[str, Any] = {"org_id": org_id, "persona_id": persona_id, "points_balance": sum(points.values())}
        row.update({column: points.get(column, 0) for column in KIND_COLUMN.values()})
        row.update(shopping.sums)
        row["first_order_at"], row["last_order_at"] = shopping.first_order_at, shopping.last_order_at
        return row

    async def _write_entries(
        self, session: AsyncSession, org_id: uuid.UUID, balances: dict[uuid.UUID, int], totals: dict[uuid.UUID, int]
    ) -> None:
        if not self.postings:
            return
        running = {persona_id: balances[persona_id] - total for persona_id, total in totals.items()}
        entries = []
        for posting in self.postings:
            posting.id = new_id()
            running[posting.persona_id] += posting.delta
            entries.append(
                {
                    "org_id": org_id,
                    "id": posting.id,
                    "persona_id": posting.persona_id,
                    "kind": posting.kind.value,
                    "delta": posting.delta,
                    "balance_after": running[posting.persona_id],
                    "note": posting.note,
                    "order_id": posting.order_id,
                    "redemption_id": None,
                    "actor": posting.actor,
                    "created_at": posting.created_at,
                }
            )
        await insert_rows(session, ENTRIES, entries)

    async def _write_counts(self, session: AsyncSession, org_id: uuid.UUID) -> None:
        if not self.counts:
            return
        rows = [
            {
                "org_id": org_id,
                "persona_id": persona_id,
                "dimension": dimension,
                "name": name,
                "order_count": tally.order_count,
                "last_purchased_at": tally.last_purchased_at,
                "created_at": tally.created_at,
            }
            for (persona_id, dimension, name), tally in sorted(
                self.counts.items(), key=lambda item: by_uuid_first(item[0])
            )
        ]
        await insert_rows(session, _purchase_count_upsert, rows)


def _rollup_upsert(insert: Callable[[Table], Any]) -> Any:
    """Insert a rollup row, or add to the one there is; returns each persona's balance after."""
    r = ROLLUPS.c
    stmt = insert(ROLLUPS)
    new = stmt.excluded
    set_: dict[str, Any] = {name: r[name] + new[name] for name in ADDED_UP}
    set_["first_order_at"] = case(
        (or_(r.first_order_at.is_(None), new.first_order_at < r.first_order_at), new.first_order_at),
        else_=r.first_order_at,
    )
    set_["last_order_at"] = case(
        (or_(r.last_order_at.is_(None), new.last_order_at > r.last_order_at), new.last_order_at),
        else_=r.last_order_at,
    )
    return stmt.on_conflict_do_update(index_elements=[r.org_id, r.persona_id], set_=set_).returning(
        r.persona_id, r.points_balance
    )


def _purchase_count_upsert(insert: Callable[[Table], Any]) -> Any:
    pc = PURCHASE_COUNTS.c
    stmt = insert(PURCHASE_COUNTS)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[pc.org_id, pc.persona_id, pc.dimension, pc.name],
        set_={
            "order_count": pc.order_count + new.order_count,
            "last_purchased_at": case(
                (new.last_purchased_at > pc.last_purchased_at, new.last_purchased_at), else_=pc.last_purchased_at
            ),
        },
    )
