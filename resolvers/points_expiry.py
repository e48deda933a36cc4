"""Points expiry (DESIGN, Points): where an organization sets
pointsExpireAfterDays, earned points older than that expire first-in
first-out, as EXPIRATION entries through the ledger (resolvers/points.py);
LEGACY_IMPORT and AUDIENCE_BOOST points never expire. `personagraph
expire-points` runs it; running it again expires nothing more."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Organization, PersonaRollup, PointsEntry
from models.base import utcnow
from models.enums import PointsEntryKind
from models.tables import ENTRIES, ROLLUPS
from resolvers.points import post_entry

NEVER_EXPIRE = frozenset({PointsEntryKind.LEGACY_IMPORT.value, PointsEntryKind.AUDIENCE_BOOST.value})


@dataclass(frozen=True)
class Expired:
    personas: int
    points: int


@dataclass
class _Lot:
    """Points one entry added, and how many of them are left."""

    kind: str
    remaining: int
    created_at: dt.datetime


def expiring_points(entries: list[tuple[str, int, dt.datetime]], cutoff: dt.datetime) -> int:
    """How many points of this ledger, given in (created_at, id) order, are due to expire.

    Points are spent first-in first-out: every spend uses up the oldest
    points left, whatever their kind. An EXPIRATION entry uses up only
    expiring points (it expired exactly those), so what it expired never
    expires twice. Points earned at or before the cutoff that are still
    there, of a kind that expires, are due.
    """
    lots: deque[_Lot] = deque()
    for kind, delta, created_at in entries:
        if delta > 0:
            lots.append(_Lot(kind, delta, created_at))
            continue
        owed = -delta
        for lot in lots:
            if owed == 0:
                break
            if kind == PointsEntryKind.EXPIRATION.value and lot.kind in NEVER_EXPIRE:
                continue
            taken = min(owed, lot.remaining)
            lot.remaining -= taken
            owed -= taken
        while lots and lots[0].remaining == 0:
            lots.popleft()
    return sum(lot.remaining for lot in lots if lot.kind not in NEVER_EXPIRE and lot.created_at <= cutoff)


async def _due_personas(session: AsyncSession, org_id: uuid.UUID, cutoff: dt.datetime) -> list[uuid.UUID]:
    """Personas with a balance and an expiring entry old enough; the rest cannot have points due."""
    rollups, entries = ROLLUPS, ENTRIES
    stmt = (
        select(entries.c.persona_id)
        .join(rollups, (rollups.c.org_id == entries.c.org_id) & (rollups.c.persona_id == entries.c.persona_id))
        .where(
            entries.c.org_id == org_id,
            entries.c.delta > 0,
            entries.c.kind.not_in(sorted(NEVER_EXPIRE)),
            entries.c.created_at <= cutoff,
            rollups.c.points_balance > 0,
        )
        .distinct()
    )
    return sorted((await session.execute(stmt)).scalars())


async def expire_persona_points(
    session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID, cutoff: dt.datetime, now: dt.datetime
) -> int:
    """Post one EXPIRATION entry for what is due; the points expired."""
    # Lock the rollup first: no entry lands between reading the ledger and posting.
    await session.execute(
        select(col(PersonaRollup.persona_id))
        .where(col(PersonaRollup.org_id) == org_id, col(PersonaRollup.persona_id) == persona_id)
        .with_for_update()
    )
    rows = await session.execute(
        select(col(PointsEntry.kind), col(PointsEntry.delta), col(PointsEntry.created_at))
        .where(col(PointsEntry.org_id) == org_id, col(PointsEntry.persona_id) == persona_id)
        .order_by(col(PointsEntry.created_at), col(PointsEntry.id))
    )
    due = expiring_points([(k, d, t) for k, d, t in rows.all()], cutoff)
    if due <= 0:
        return 0
    await post_entry(
        session,
        org_id=org_id,
        persona_id=persona_id,
        kind=PointsEntryKind.EXPIRATION,
        delta=-due,
        note=f"points earned on or before {cutoff.date().isoformat()} expired",
        at=now,
    )
    return due


async def organizations_with_expiry(session: AsyncSession) -> list[Organization]:
    rows = await session.execute(
        select(Organization)
        .where(col(Organization.points_expire_after_days).is_not(None))
        .order_by(col(Organization.slug))
    )
    return list(rows.scalars())


async def expire_points(
    new_session: Callable[[], AsyncSession], org: Organization, *, now: dt.datetime | None = None, batch: int = 200
) -> Expired:
    """Expire what is due for every persona of the organization, ``batch`` personas per transaction.

    Idempotent: what an earlier run expired is no longer there to expire.
    """
    if org.points_expire_after_days is None:
        return Expired(0, 0)
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=org.points_expire_after_days)
    async with new_session() as session:
        due = await _due_personas(session, org.id, cutoff)
    personas = points = 0
    for start in range(0, len(due), batch):
        async with new_session() as session, session.begin():
            for persona_id in due[start : start + batch]:
                expired = await expire_persona_points(session, org.id, persona_id, cutoff, now)
                personas += expired > 0
                points += expired
    return Expired(personas, points)
