"""Merging duplicate personas losslessly, and undoing a merge exactly.

merge_personas folds the merged persona into the survivor: everything it owns
moves, the survivor wins conflicts, the most restrictive consent wins, the
rollups add up, and the merged persona stays as a tombstone pointing at the
survivor. Merge.moved records what moved (resolvers/merge_records.py), so
undo_merge can put it back while the survivor keeps what it gained since.
Both personas' rows are locked first, so merges and undos touching the same
persona queue instead of interleaving.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import CustomAttribute, Merge, Order, OrderLine, Persona, PersonaRollup, PointsEntry
from models.base import utcnow
from models.enums import MergeKind, PurchaseDimension
from models.tables import PURCHASE_COUNTS
from resolvers import merge_records as records
from resolvers.errors import UserError
from resolvers.points import KIND_COLUMN

CANNOT_UNDO = "CANNOT_UNDO"
# The rollup columns that add up when two personas become one.
ROLLUP_SUMS: tuple[str, ...] = (
    "points_balance",
    "orders_count",
    "items_count",
    "spend_total_cents",
    "spend_subtotal_cents",
    "spend_member_subtotal_cents",
    *KIND_COLUMN.values(),
)
# The order-line column each purchase-count dimension counts.
DIMENSION_COLUMNS = {
    PurchaseDimension.PRODUCT.value: OrderLine.product,
    PurchaseDimension.BRAND.value: OrderLine.brand,
    PurchaseDimension.CATEGORY.value: OrderLine.category,
}


@dataclass
class MergePreviewData:
    resulting_points: int
    orders_moved: int
    conflicting_attributes: list[str]
    blockers: list[UserError] = field(default_factory=list)


def merge_blockers(org_id: uuid.UUID, survivor: Persona, merged: Persona) -> list[UserError]:
    """Why this merge may not go ahead; empty when it may."""
    if survivor.org_id != org_id or merged.org_id != org_id:
        return [UserError("NOT_FOUND", "No such persona.", ["mergedId"])]
    if survivor.id == merged.id:
        return [UserError("SAME_PERSONA", "A persona cannot be merged into itself.", ["mergedId"])]
    return [
        UserError("ALREADY_MERGED", f"Persona #{persona.number} was already merged into another persona.", [name])
        for persona, name in ((survivor, "survivorId"), (merged, "mergedId"))
        if persona.merged_into_id is not None
    ]


async def merge_personas(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    survivor: Persona,
    merged: Persona,
    kind: MergeKind,
    reason: str | None,
    actor: str | None,
) -> Merge:
    """Fold ``merged`` into ``survivor`` (ORM instances of this session) and record how."""
    for blocker in merge_blockers(org_id, survivor, merged):
        raise blocker
    await session.flush()
    await _lock_personas(session, org_id, [survivor.id, merged.id])
    # Seen again under the lock: a concurrent merge may have got there first.
    for blocker in merge_blockers(org_id, survivor, merged):
        raise blocker
    # Points post under the rollup lock: holding both, no entry lands between the move and the fold.
    rollups = (await _rollup(session, org_id, survivor.id), await _rollup(session, org_id, merged.id))
    now = utcnow()
    filled = records.fill_fields(survivor, merged)
    moved: records.Record = {
        "rows": await records.move_rows(session, org_id, merged.id, survivor.id),
        "identity_keys": await records.move_identity_keys(session, org_id, merged.id, survivor.id),
        "attributes": await records.move_attributes(session, org_id, merged.id, survivor.id),
        "tags": await records.move_tags(session, org_id, merged.id, survivor.id),
        "consents": await records.move_consents(session, org_id, survivor, merged.id, now, filled),
        "loyalty": records.join_loyalty(survivor, merged),
        "filled": filled,
        "rollup": await _fold_rollups(session, org_id, *rollups),
    }
    merged.merged_into_id = survivor.id
    survivor.updated_at = merged.updated_at = now
    await session.flush()
    await rebalance_ledger(session, org_id, survivor.id)
    merge = Merge(
        org_id=org_id,
        kind=kind.value,
        survivor_id=survivor.id,
        merged_id=merged.id,
        merged_number=merged.number,
        reason=reason[:500] if reason else None,
        actor=actor[:200] if actor else None,
        moved=moved,
        merged_at=now,
    )
    session.add(merge)
    await session.flush()
    return merge


async def undo_merge(session: AsyncSession, *, org_id: uuid.UUID, merge: Merge, actor: str | None) -> Merge:
    """Give the merged persona back exactly what the merge took; CANNOT_UNDO when it cannot be."""
    if merge.org_id != org_id:
        raise UserError("NOT_FOUND", "No such merge.", ["mergeId"])
    await session.flush()
    personas = await _lock_personas(session, org_id, [merge.survivor_id, merge.merged_id])
    await session.execute(
        select(Merge)
        .where(col(Merge.org_id) == org_id, col(Merge.id) == merge.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    survivor, merged = personas.get(merge.survivor_id), personas.get(merge.merged_id)
    if survivor is None or merged is None:
        raise UserError(CANNOT_UNDO, "A persona of this merge no longer exists.", ["mergeId"])
    moved = merge.moved
    for persona in (survivor, merged):
        await _rollup(session, org_id, persona.id)  # no points post while the ledgers are checked and split
    await _check_undo(session, org_id, merge, survivor, merged)

    await records.restore_rows(session, org_id, survivor.id, merged.id, moved["rows"])
    await records.restore_identity_keys(session, org_id, merged.id, moved["identity_keys"])
    await records.restore_attributes_and_tags(session, org_id, survivor.id, merged.id, moved)
    await records.restore_consents(session, org_id, survivor.id, merged.id, moved["consents"])
    records.unfill_fields(survivor, moved["filled"])
    records.leave_loyalty(survivor, moved["loyalty"])
    now = utcnow()
    merged.merged_into_id = None
    survivor.updated_at = merged.updated_at = now
    await session.flush()
    for persona in (survivor, merged):
        await recompute_rollups(session, org_id, persona.id)
        await rebalance_ledger(session, org_id, persona.id)
    merge.undone_at = now
    merge.moved = {**moved, "undone_by": actor}
    await session.flush()
    return merge


async def preview_merge(
    session: AsyncSession, *, org_id: uuid.UUID, survivor: Persona, merged: Persona
) -> MergePreviewData:
    """What merge_personas would do, without writing anything; a blocked merge moves nothing."""
    balances = await _balances(session, org_id, [survivor.id, merged.id])
    blockers = merge_blockers(org_id, survivor, merged)
    if blockers:
        return MergePreviewData(balances.get(survivor.id, 0), 0, [], blockers)
    orders = await session.execute(
        select(func.count()).where(col(Order.org_id) == org_id, col(Order.persona_id) == merged.id)
    )
    attributes = await session.execute(
        select(col(CustomAttribute.persona_id), col(CustomAttribute.key), col(CustomAttribute.value)).where(
            col(CustomAttribute.org_id) == org_id, col(CustomAttribute.persona_id).in_([survivor.id, merged.id])
        )
    )
    values: dict[uuid.UUID, dict[str, str]] = {survivor.id: {}, merged.id: {}}
    for persona_id, key, value in attributes.all():
        values[persona_id][key] = value
    ours, theirs = values[survivor.id], values[merged.id]
    return MergePreviewData(
        resulting_points=balances.get(survivor.id, 0) + balances.get(merged.id, 0),
        orders_moved=int(orders.scalar_one()),
        conflicting_attributes=sorted(key for key in ours.keys() & theirs.keys() if ours[key] != theirs[key]),
    )


async def _check_undo(
    session: AsyncSession, org_id: uuid.UUID, merge: Merge, survivor: Persona, merged: Persona
) -> None:
    def refuse(message: str) -> UserError:
        return UserError(CANNOT_UNDO, message, ["mergeId"])

    if merge.undone_at is not None:
        raise refuse("This merge was already undone.")
    if merged.merged_into_id != survivor.id:
        raise refuse(f"Persona #{merged.number} is no longer merged into persona #{survivor.number}.")
    if survivor.merged_into_id is not None:
        raise refuse(f"Persona #{survivor.number} has since been merged into another persona: undo that merge first.")
    if survivor.erased_at is not None or merged.erased_at is not None:
        raise refuse("A persona of this merge has been erased.")
    for kind, value in merge.moved["identity_keys"]:
        holder = await records.key_holder(session, org_id, kind, value)
        if holder is not None and holder not in (survivor.id, merged.id):
            third = await session.get(Persona, (org_id, holder))
            number = f"#{third.number}" if third is not None else "another persona"
            raise refuse(f"The {kind} of persona #{merged.number} now belongs to persona {number}.")
    returned = set(merge.moved["rows"]["points_entries"])
    entries = await session.execute(
        select(col(PointsEntry.id), col(PointsEntry.delta))
        .where(col(PointsEntry.org_id) == org_id, col(PointsEntry.persona_id) == survivor.id)
        .order_by(col(PointsEntry.created_at), col(PointsEntry.id))
    )
    running = 0
    for entry_id, delta in entries.all():
        if entry_id.hex not in returned:
            running += delta
            if running < 0:
                raise refuse(
                    f"Persona #{survivor.number} has spent points that came from persona #{merged.number}: "
                    "giving them back would take the balance below zero."
                )


async def _lock_personas(session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, Persona]:
    """Lock the rows (in id order, against deadlocks) and re-read them."""
    rows = await session.execute(
        select(Persona)
        .where(col(Persona.org_id) == org_id, col(Persona.id).in_(ids))
        .order_by(col(Persona.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {persona.id: persona for persona in rows.scalars()}


async def _balances(session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(col(PersonaRollup.persona_id), col(PersonaRollup.points_balance)).where(
            col(PersonaRollup.org_id) == org_id, col(PersonaRollup.persona_id).in_(ids)
        )
    )
    return dict(rows.all())


# Rollups and the ledger ------------------------------------------------------------


async def _rollup(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> PersonaRollup:
    """The persona's rollup, locked and re-read (points post with plain UPDATEs)."""
    rollup = (
        await session.execute(
            select(PersonaRollup)
            .where(col(PersonaRollup.org_id) == org_id, col(PersonaRollup.persona_id) == persona_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if rollup is None:
        rollup = PersonaRollup(org_id=org_id, persona_id=persona_id)
        session.add(rollup)
        await session.flush()
    return rollup


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else max(a, b)


async def _fold_rollups(
    session: AsyncSession, org_id: uuid.UUID, ours: PersonaRollup, theirs: PersonaRollup
) -> records.Record:
    """Add the merged persona's rollup into the survivor's and zero it; the record is what was added."""
    survivor_id, merged_id = ours.persona_id, theirs.persona_id
    record: records.Record = {name: getattr(theirs, name) for name in ROLLUP_SUMS}
    record["first_order_at"] = records.iso(theirs.first_order_at)
    record["last_order_at"] = records.iso(theirs.last_order_at)
    for name in ROLLUP_SUMS:
        setattr(ours, name, getattr(ours, name) + getattr(theirs, name))
        setattr(theirs, name, 0)
    ours.first_order_at = _earliest(ours.first_order_at, theirs.first_order_at)
    ours.last_order_at = _latest(ours.last_order_at, theirs.last_order_at)
    theirs.first_order_at = theirs.last_order_at = None

    pc = PURCHASE_COUNTS.c
    rows = (
        await session.execute(
            select(PURCHASE_COUNTS).where(pc.org_id == org_id, pc.persona_id.in_([survivor_id, merged_id]))
        )
    ).all()
    held = {(row.dimension, row.name): row for row in rows if row.persona_id == survivor_id}
    counts: list[records.Record] = []
    for row in rows:
        if row.persona_id != merged_id:
            continue
        counts.append({"dimension": row.dimension, "name": row.name, "order_count": row.order_count})
        mine = held.get((row.dimension, row.name))
        if mine is None:
            await session.execute(insert(PURCHASE_COUNTS).values(**{**row._asdict(), "persona_id": survivor_id}))
            continue
        await session.execute(
            update(PURCHASE_COUNTS)
            .where(
                pc.org_id == org_id, pc.persona_id == survivor_id, pc.dimension == row.dimension, pc.name == row.name
            )
            .values(
                order_count=mine.order_count + row.order_count,
                last_purchased_at=max(mine.last_purchased_at, row.last_purchased_at),
                created_at=min(mine.created_at, row.created_at),
            )
        )
    await session.execute(delete(PURCHASE_COUNTS).where(pc.org_id == org_id, pc.persona_id == merged_id))
    record["purchase_counts"] = counts
    return record


async def recompute_rollups(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> None:
    """Set the persona's rollup and purchase counts from the orders and ledger entries it owns."""
    rollup = await _rollup(session, org_id, persona_id)  # locked first: what is counted cannot change
    mine = (col(Order.org_id) == org_id, col(Order.persona_id) == persona_id)
    shopping = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(col(Order.item_count)), 0),
                func.coalesce(func.sum(col(Order.total_cents)), 0),
                func.coalesce(func.sum(col(Order.subtotal_cents)), 0),
                func.coalesce(func.sum(case((col(Order.member_at_order), col(Order.subtotal_cents)), else_=0)), 0),
                func.min(col(Order.placed_at)),
                func.max(col(Order.placed_at)),
            ).where(*mine)
        )
    ).one()
    points = await session.execute(
        select(col(PointsEntry.kind), func.sum(col(PointsEntry.delta)))
        .where(col(PointsEntry.org_id) == org_id, col(PointsEntry.persona_id) == persona_id)
        .group_by(col(PointsEntry.kind))
    )
    per_kind = {kind: int(total) for kind, total in points.all()}
    rollup.orders_count, rollup.items_count, rollup.spend_total_cents = (int(v) for v in shopping[:3])
    rollup.spend_subtotal_cents, rollup.spend_member_subtotal_cents = int(shopping[3]), int(shopping[4])
    rollup.first_order_at, rollup.last_order_at = shopping[5], shopping[6]
    for kind, column in KIND_COLUMN.items():
        setattr(rollup, column, per_kind.get(kind.value, 0))
    rollup.points_balance = sum(per_kind.values())

    pc = PURCHASE_COUNTS.c
    await session.execute(delete(PURCHASE_COUNTS).where(pc.org_id == org_id, pc.persona_id == persona_id))
    for dimension, attribute in DIMENSION_COLUMNS.items():
        name = col(attribute)
        counted = await session.execute(
            select(
                name,
                func.count(col(Order.id).distinct()),
                func.max(col(Order.placed_at)),
                func.min(col(Order.created_at)),
            )
            .select_from(Order)
            .join(OrderLine, (col(OrderLine.org_id) == col(Order.org_id)) & (col(OrderLine.order_id) == col(Order.id)))
            .where(*mine, name.is_not(None))
            .group_by(name)
        )
        values = [
            {
                "org_id": org_id,
                "persona_id": persona_id,
                "dimension": dimension,
                "name": value,
                "order_count": count,
                "last_purchased_at": last,
                "created_at": first,
            }
            for value, count, last, first in counted.all()
        ]
        if values:
            await session.execute(insert(PURCHASE_COUNTS), values)
    await session.flush()


async def rebalance_ledger(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> None:
    """Rewrite balance_after as the running sum in (created_at, id) order: merged ledgers interleave."""
    entries = await session.execute(
        select(PointsEntry)
        .where(col(PointsEntry.org_id) == org_id, col(PointsEntry.persona_id) == persona_id)
        .order_by(col(PointsEntry.created_at), col(PointsEntry.id))
        .execution_options(populate_existing=True)
    )
    running = 0
    for entry in entries.scalars():
        running += entry.delta
        if entry.balance_after != running:
            entry.balance_after = running
    await session.flush()
