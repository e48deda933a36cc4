"""Erasing a persona's personal data while its orders and points stay.

What goes, per erased persona (and every persona merged into it, whose
tombstone still holds the traits it had):

- the persona's traits: names, email, phone, birthday, source id, browser,
  IP address, wallet PIN, favorite store and referrer; ``erased_at`` is set;
- identity keys (so a later contact with the same phone or email makes a
  fresh persona), custom attributes and tags;
- message bodies: the rows stay with an empty body (Message.body is NOT
  NULL), so campaign figures still count what was sent, but no text remains;
- survey answers (the submission stays, with no answers), campaign action
  details, and pixel events (deleted: their URLs are the person's browsing);
- sign-up submissions keep only the form name and time: URL, IP, browser and
  signature are cleared;
- free-text notes on points entries (staff may have typed a name there);
- in merge records: the reason (it names the matched phone or email) and the
  recorded identity keys, attribute values, tags and filled traits. Such a
  merge can no longer be undone (undoMerge refuses erased personas anyway);
- the search's name parts (models/search.py) that no persona of the
  organization has any more (the erased names, and any name they had before).

What stays: orders and their lines, points entries (kind, amount, balance),
redemptions, rollups, consents and their history (statuses and times, no
contact data), so store totals and ledgers still add up.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import (
    CustomAttribute,
    IdentityKey,
    Merge,
    Message,
    Persona,
    PersonaAction,
    PersonaTag,
    PixelEvent,
    PointsEntry,
    SignupSubmission,
    SurveySubmission,
)
from models.base import utcnow
from resolvers.search_names import forget_unused_name_parts, lock_name_parts

# Persona traits that identify or describe the person.
ERASED_TRAITS = (
    *("first_name", "last_name", "email", "phone", "birthday", "source_id"),
    *("browser", "ip_address", "wallet_pin", "favorite_store_id", "referred_by_id"),
)
# Ids per IN list: far below SQLite's limit on bound parameters.
CHUNK = 500


async def with_merged_tombstones(
    session: AsyncSession, org_id: uuid.UUID, persona_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """The personas and, transitively, every persona merged into them."""
    found = list(dict.fromkeys(persona_ids))
    frontier = list(found)
    while frontier:
        rows = await session.execute(
            select(col(Persona.id)).where(col(Persona.org_id) == org_id, col(Persona.merged_into_id).in_(frontier))
        )
        frontier = [pid for pid in rows.scalars() if pid not in found]
        found.extend(frontier)
    return found


async def erase_personas(session: AsyncSession, org_id: uuid.UUID, persona_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Erase the personas' PII (see the module doc); returns every persona erased, tombstones included."""
    ids = await with_merged_tombstones(session, org_id, persona_ids)
    if not ids:
        return []
    await session.flush()
    # Before any persona is locked, so that no writer waits for one while holding the lock shared.
    await lock_name_parts(session)
    # Locked in id order (as merges lock), so a merge or undo touching them waits for the erasure.
    await session.execute(
        select(col(Persona.id))
        .where(col(Persona.org_id) == org_id, col(Persona.id).in_(ids))
        .order_by(col(Persona.id))
        .with_for_update()
    )
    now = utcnow()
    for start in range(0, len(ids), CHUNK):
        await _erase_chunk(session, org_id, ids[start : start + CHUNK], now)
    await _redact_merges(session, org_id, ids)
    await forget_unused_name_parts(session, org_id)
    # ORM instances the caller holds must not write the old values back.
    for persona in list(session.identity_map.values()):
        if isinstance(persona, Persona) and persona.org_id == org_id and persona.id in ids:
            await session.refresh(persona)
    return ids


async def _erase_chunk(session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID], now: Any) -> None:
    def owned(model: Any) -> list[Any]:
        return [model.org_id == org_id, model.persona_id.in_(ids)]

    await session.execute(
        update(Persona)
        .where(col(Persona.org_id) == org_id, col(Persona.id).in_(ids))
        .values(**dict.fromkeys(ERASED_TRAITS), erased_at=now, updated_at=now)
    )
    for model in (IdentityKey, CustomAttribute, PersonaTag, PixelEvent):
        await session.execute(delete(model).where(*owned(model)))
    await session.execute(update(Message).where(*owned(Message)).values(body=""))
    await session.execute(update(SurveySubmission).where(*owned(SurveySubmission)).values(answers=[]))
    await session.execute(update(PersonaAction).where(*owned(PersonaAction)).values(detail=None))
    await session.execute(
        update(SignupSubmission)
        .where(*owned(SignupSubmission))
        .values(url="", ip_address=None, user_agent=None, signature=None)
    )
    await session.execute(update(PointsEntry).where(*owned(PointsEntry)).values(note=None))


async def _redact_merges(session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    merges = await session.execute(
        select(Merge).where(
            col(Merge.org_id) == org_id, or_(col(Merge.survivor_id).in_(ids), col(Merge.merged_id).in_(ids))
        )
    )
    for merge in merges.scalars():
        merge.reason = None
        merge.moved = {
            **merge.moved,
            "identity_keys": [],
            "attributes": {"moved": [], "kept": []},
            "tags": {"added": [], "shared": []},
            "filled": {},
            "erased": True,
        }
    await session.flush()
