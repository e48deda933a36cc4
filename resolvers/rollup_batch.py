"""The points postings and rollup changes of a whole batch, written set-wise.

A batch (resolvers/ingest_batch.py, resolvers/orders_batch.py) collects what
each row posts and buys, in row order; write() then sends one upsert of the
persona_rollups rows (new personas' rows, and the sums of every persona's
points and shopping figures), one insert of the ledger entries with their
running balance_after, and one upsert of the purchase counts. Ledger sum ==
cached balance holds as with post_entries: the balance moves in the same
transaction as the entries, by their sum.

balance_after runs from the balance the rollup upsert left: on PostgreSQL the
entries' INSERT reads it (the statements go in one round trip, resolvers/upsert.py
Writes), on SQLite the upsert returns it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Integer,
    Table,
    and_,
    bindparam,
    case,
    column,
    distinct,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect

from models.base import new_id, one_of
from models.enums import PointsEntryKind, PurchaseDimension
from models.tables import ENTRIES, ORDER_LINES, ORDERS, PURCHASE_COUNTS, ROLLUPS
from resolvers.points import KIND_COLUMN
from resolvers.upsert import Writes, by_uuid, json_records, rows_parameter

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


class RollupBatch:
    def __init__(self) -> None:
        self.postings: list[Posting] = []
        self.shopping: dict[uuid.UUID, Shopping] = {}
        self.created: set[uuid.UUID] = set()
        self.orders: list[uuid.UUID] = []  # their purchase counts are read from their lines as written

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

    def add_order(self, order: dict[str, Any]) -> None:
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
        self.orders.append(order["id"])

    async def write(self, writes: Writes, org_id: uuid.UUID) -> None:
        """Rollups (one upsert), then the entries, then the purchase counts."""
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
        returned = await writes.insert(_rollup_upsert, rows)
        entries = self._entry_rows(org_id)
        if entries and writes.pipelined:
            for seq, entry in enumerate(entries):
                entry["seq"] = seq
                del entry["created_at"]  # the time of the write (_entries_after_rollups)
            await writes.execute(_entries_after_rollups, rows_parameter((), entries))
        elif entries:
            balances: dict[uuid.UUID, int] = {row.persona_id: row.points_balance for row in returned or []}
            running = {p: balances[p] - sum(d.values()) for p, d in points.items()}
            for entry in entries:
                running[entry["persona_id"]] += entry["delta"]
                entry["balance_after"] = running[entry["persona_id"]]
            await writes.insert(ENTRIES, entries)
        await self._write_counts(writes, org_id)

    def _rollup_row(self, org_id: uuid.UUID, persona_id: uuid.UUID, points: dict[str, int]) -> dict[str, Any]:
        shopping = self.shopping.get(persona_id) or Shopping()
        row: dict[str, Any] = {"org_id": org_id, "persona_id": persona_id, "points_balance": sum(points.values())}
        row.update({column: points.get(column, 0) for column in KIND_COLUMN.values()})
        row.update(shopping.sums)
        row["first_order_at"], row["last_order_at"] = shopping.first_order_at, shopping.last_order_at
        return row

    def _entry_rows(self, org_id: uuid.UUID) -> list[dict[str, Any]]:
        """The postings as ledger rows, in posting order, each given its id (balance_after to come)."""
        entries = []
        for posting in self.postings:
            posting.id = new_id()
            entries.append(
                {
                    "org_id": org_id,
                    "id": posting.id,
                    "persona_id": posting.persona_id,
                    "kind": posting.kind.value,
                    "delta": posting.delta,
                    "note": posting.note,
                    "order_id": posting.order_id,
                    "redemption_id": None,
                    "actor": posting.actor,
                    "created_at": posting.created_at,
                }
            )
        return entries

    async def _write_counts(self, writes: Writes, org_id: uuid.UUID) -> None:
        """The purchase counts of the batch's orders, from their lines (written before: the orders' and
        lines' INSERTs come first in the same round trip)."""
        if self.orders:
            await writes.execute(_purchase_counts_of_orders, {"org_id": org_id, "ids": self.orders})


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


def _purchase_counts_of_orders(dialect: Dialect) -> Any:
    """Each of the orders `ids` counted once per product, brand and category its lines name, added to
    the persona's purchase counts (the latest purchase kept); upserted in (persona, dimension, name)
    order, byte-wise as Python sorts (the row-by-row path, resolvers/orders_accrual.count_purchases,
    locks a persona's counts in that order too)."""
    o, ln = ORDERS.c, ORDER_LINES.c

    def named(dimension: PurchaseDimension, name: Any) -> Any:
        return (
            select(
                o.org_id,
                o.persona_id,
                literal_column(f"'{dimension.value}'").label("dimension"),
                name.label("name"),
                o.id.label("order_id"),
                o.placed_at,
                o.created_at,
            )
            .join_from(ORDERS, ORDER_LINES, and_(ln.org_id == o.org_id, ln.order_id == o.id))
            .where(o.org_id == bindparam("org_id"), one_of(o.id, "ids"), name.is_not(None))
        )

    each = union_all(
        named(PurchaseDimension.PRODUCT, ln.product),
        named(PurchaseDimension.BRAND, ln.brand),
        named(PurchaseDimension.CATEGORY, ln.category),
    ).subquery()
    key = (each.c.org_id, each.c.persona_id, each.c.dimension, each.c.name)
    in_order = each.c.name.collate("C") if dialect.name == "postgresql" else each.c.name
    counted = (
        select(*key, func.count(distinct(each.c.order_id)), func.max(each.c.placed_at), func.min(each.c.created_at))
        .where(true())  # SQLite reads an upsert's SELECT without a WHERE as ambiguous
        .group_by(*key)
        .order_by(each.c.persona_id, each.c.dimension, in_order)
    )
    insert = pg_insert if dialect.name == "postgresql" else sqlite_insert
    stmt = insert(PURCHASE_COUNTS).from_select(
        ["org_id", "persona_id", "dimension", "name", "order_count", "last_purchased_at", "created_at"], counted
    )
    pc, new = PURCHASE_COUNTS.c, stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[pc.org_id, pc.persona_id, pc.dimension, pc.name],
        set_={
            "order_count": pc.order_count + new.order_count,
            "last_purchased_at": case(
                (new.last_purchased_at > pc.last_purchased_at, new.last_purchased_at), else_=pc.last_purchased_at
            ),
        },
    )


ENTRY_COLUMNS = (
    "org_id",
    "id",
    "persona_id",
    "kind",
    "delta",
    "note",
    "order_id",
    "redemption_id",
    "actor",
    "created_at",
)


def _entries_after_rollups(_dialect: Dialect) -> Any:
    """PostgreSQL: insert the entries (rows with a `seq`, their posting order) with balance_after read
    from the rollup the same transaction's upsert just moved by their sum:
    balance - (the persona's entries' sum) + (its entries' sum up to this one).

    Their created_at is the time of this INSERT, as post_entries takes it after its UPDATE of the
    rollup: a batch that shares a persona with another writes its entries once the other has
    committed (the rollup's row lock), so (created_at, id), the ledger's order, is the order of the
    balances, whichever batch planned first. Within the batch, ids are made in posting order."""
    written = tuple(name for name in ENTRY_COLUMNS if name != "created_at")
    x = json_records(ENTRIES, written, column("seq", Integer))
    r = ROLLUPS.c
    balance_after = (
        r.points_balance
        - func.sum(x.c.delta).over(partition_by=x.c.persona_id)
        + func.sum(x.c.delta).over(partition_by=x.c.persona_id, order_by=x.c.seq)
    )
    source = select(*(x.c[name] for name in written), balance_after, func.clock_timestamp()).join_from(
        x, ROLLUPS, and_(r.org_id == x.c.org_id, r.persona_id == x.c.persona_id)
    )
    return pg_insert(ENTRIES).from_select([*written, "balance_after", "created_at"], source)
