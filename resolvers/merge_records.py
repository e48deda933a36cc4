"""What a merge moves, written down so undoMerge can put it back exactly.

Each part comes as a pair: ``move_*`` does the merge's half and returns what
it records in Merge.moved (JSON: ids as hex, times as ISO 8601); ``restore_*``
reads that record back on undo. Rows whose key does not hold persona_id
change hands with one UPDATE per table. Rows keyed by persona (attributes,
tags, consents) are moved, kept or dropped one by one through the ORM, so
objects the caller already loaded in the session stay true. On undo, a row
the survivor changed since the merge is the survivor's: it stays, and the
merged persona gets its recorded copy back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypeVar, cast

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlmodel import SQLModel, col

from models import (
    Consent,
    ConsentEvent,
    CustomAttribute,
    IdentityKey,
    Message,
    Order,
    Persona,
    PersonaAction,
    PersonaTag,
    PixelEvent,
    PointsEntry,
    Redemption,
    SignupSubmission,
    SurveySubmission,
)
from models.enums import Channel, ConsentSource, OptInStatus

Record = dict[str, Any]

# Tables whose rows simply change hands; Merge.moved lists their ids per table.
MOVED_TABLES: dict[str, type[SQLModel]] = {
    "orders": Order,
    "points_entries": PointsEntry,
    "redemptions": Redemption,
    "messages": Message,
    "survey_submissions": SurveySubmission,
    "persona_actions": PersonaAction,
    "pixel_events": PixelEvent,
    "signup_submissions": SignupSubmission,
    "consent_events": ConsentEvent,
}
# Ids per IN list: far below SQLite's limit on bound parameters.
CHUNK = 500
# Per channel the more restrictive status wins a merge, so an opt-out is never lost.
RESTRICTIVENESS = {OptInStatus.UNKNOWN.value: 0, OptInStatus.OPTED_IN.value: 1, OptInStatus.OPTED_OUT.value: 2}
# The survivor's traits a merge fills from the merged persona where the survivor has none.
FILLABLE = (
    *("first_name", "last_name", "email", "phone", "birthday", "favorite_store_id"),
    *("browser", "ip_address", "wallet_pin", "referred_by_id", "sms_opt_out_at"),
)
_UUID_FIELDS = frozenset({"favorite_store_id", "referred_by_id"})
_TIME_FIELDS = frozenset({"sms_opt_out_at"})
_DATE_FIELDS = frozenset({"birthday"})


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_time(value: Any) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(str(value))


def _column(model: type[SQLModel], name: str) -> InstrumentedAttribute[Any]:
    return cast("InstrumentedAttribute[Any]", getattr(model, name))


# Rows that change hands --------------------------------------------------------


async def move_rows(
    session: AsyncSession, org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID
) -> dict[str, list[str]]:
    moved: dict[str, list[str]] = {}
    for name, model in MOVED_TABLES.items():
        result = await session.execute(
            update(model)
            .where(_column(model, "org_id") == org_id, _column(model, "persona_id") == from_id)
            .values(persona_id=to_id)
            .returning(_column(model, "id"))
        )
        moved[name] = sorted(row_id.hex for row_id in result.scalars())
    return moved


async def restore_rows(
    session: AsyncSession, org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID, moved: dict[str, list[str]]
) -> None:
    for name, model in MOVED_TABLES.items():
        ids = [uuid.UUID(hex_id) for hex_id in moved.get(name, [])]
        for start in range(0, len(ids), CHUNK):
            await session.execute(
                update(model)
                .where(
                    _column(model, "org_id") == org_id,
                    _column(model, "persona_id") == from_id,
                    _column(model, "id").in_(ids[start : start + CHUNK]),
                )
                .values(persona_id=to_id)
            )


# Identity keys ----------------------------------------------------------------


async def move_identity_keys(
    session: AsyncSession, org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID
) -> list[list[str]]:
    result = await session.execute(
        update(IdentityKey)
        .where(col(IdentityKey.org_id) == org_id, col(IdentityKey.persona_id) == from_id)
        .values(persona_id=to_id)
        .returning(col(IdentityKey.kind), col(IdentityKey.value))
    )
    return sorted([kind, value] for kind, value in result.all())


async def key_holder(session: AsyncSession, org_id: uuid.UUID, kind: str, value: str) -> uuid.UUID | None:
    held = await session.get(IdentityKey, (org_id, kind, value), populate_existing=True)
    return None if held is None else held.persona_id


async def restore_identity_keys(
    session: AsyncSession, org_id: uuid.UUID, to_id: uuid.UUID, keys: list[list[str]]
) -> None:
    for kind, value in keys:
        held = await session.get(IdentityKey, (org_id, kind, value), populate_existing=True)
        if held is None:
            session.add(IdentityKey(org_id=org_id, kind=kind, value=value, persona_id=to_id))
        else:
            held.persona_id = to_id


# Rows keyed by persona: attributes, tags, consents ---------------------------------

Keyed = TypeVar("Keyed", CustomAttribute, PersonaTag, Consent)
# What a record keeps of each row; the first column names the row within a persona.
_FIELDS: dict[type[SQLModel], tuple[str, ...]] = {
    CustomAttribute: ("key", "value", "source", "updated_at"),
    PersonaTag: ("tag", "created_at"),
    Consent: ("channel", "status", "source", "updated_at"),
}
_TIME_COLUMNS = frozenset({"updated_at", "created_at"})


def _snapshot(row: SQLModel) -> Record:
    return {name: encode_field(getattr(row, name)) for name in _FIELDS[type(row)]}


def _put(
    session: AsyncSession,
    current: Keyed | None,
    model: type[Keyed],
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    item: Record,
) -> None:
    """Make the persona's row say what the record says: update it, or add it."""
    values: dict[str, Any] = {name: parse_time(raw) if name in _TIME_COLUMNS else raw for name, raw in item.items()}
    if current is None:
        session.add(model(org_id=org_id, persona_id=persona_id, **values))
    else:
        for name, value in values.items():
            setattr(current, name, value)


def _same(current: SQLModel | None, item: Record) -> bool:
    """Whether the row is still what the record says the merge left there."""
    return current is not None and _snapshot(current) == item


async def _rows_of(
    session: AsyncSession, model: type[Keyed], org_id: uuid.UUID, persona_id: uuid.UUID
) -> dict[str, Keyed]:
    rows = await session.execute(
        select(model)
        .where(_column(model, "org_id") == org_id, _column(model, "persona_id") == persona_id)
        .execution_options(populate_existing=True)
    )
    key = _FIELDS[model][0]
    return {getattr(row, key): row for row in rows.scalars()}


async def _move_keyed(
    session: AsyncSession, model: type[Keyed], org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID
) -> tuple[list[Record], list[Record]]:
    """Move the rows whose key the survivor lacks; drop the others (the survivor's row wins).
    Both come back recorded, in key order: (moved, already held)."""
    held = await _rows_of(session, model, org_id, to_id)
    moved: list[Record] = []
    already: list[Record] = []
    for key, row in sorted((await _rows_of(session, model, org_id, from_id)).items()):
        item = _snapshot(row)
        await session.delete(row)
        if key in held:
            already.append(item)
        else:
            moved.append(item)
            _put(session, None, model, org_id, to_id, item)
    return moved, already


async def move_attributes(session: AsyncSession, org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID) -> Record:
    """Keys the survivor lacks move; on a conflict the survivor's value wins
    and the merged persona's is kept here (``kept``)."""
    moved, kept = await _move_keyed(session, CustomAttribute, org_id, from_id, to_id)
    return {"moved": moved, "kept": kept}


async def move_tags(session: AsyncSession, org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID) -> Record:
    """The union: ``added`` are the tags the survivor gained, ``shared`` those it had."""
    added, shared = await _move_keyed(session, PersonaTag, org_id, from_id, to_id)
    return {"added": added, "shared": shared}


async def restore_keyed(
    session: AsyncSession,
    model: type[Keyed],
    org_id: uuid.UUID,
    from_id: uuid.UUID,
    to_id: uuid.UUID,
    gained: list[Record],
    lost: list[Record],
) -> None:
    """Take back from the survivor the rows it ``gained`` that it has not changed
    since (a row it changed is its own now); give the merged persona back every
    row it ``lost``."""
    held = await _rows_of(session, model, org_id, from_id)
    for item in gained:
        current = held.get(item[_FIELDS[model][0]])
        if _same(current, item):
            await session.delete(current)
    present = await _rows_of(session, model, org_id, to_id)
    for item in lost:
        _put(session, present.get(item[_FIELDS[model][0]]), model, org_id, to_id, item)


async def restore_attributes_and_tags(
    session: AsyncSession, org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID, moved: Record
) -> None:
    attributes, tags = moved["attributes"], moved["tags"]
    lost_attributes = attributes["moved"] + attributes["kept"]
    await restore_keyed(session, CustomAttribute, org_id, from_id, to_id, attributes["moved"], lost_attributes)
    await restore_keyed(session, PersonaTag, org_id, from_id, to_id, tags["added"], tags["added"] + tags["shared"])


def _rank(consent: Consent | None) -> int:
    return -1 if consent is None else RESTRICTIVENESS.get(consent.status, 0)


async def move_consents(
    session: AsyncSession, org_id: uuid.UUID, survivor: Persona, from_id: uuid.UUID, now: dt.datetime, filled: Record
) -> Record:
    """Per channel the more restrictive status wins, with its source (a privacy
    opt-out keeps its force) and a MERGE event. ``survivor_before`` holds the
    survivor's consents as they were, ``taken`` what the merge set."""
    held = await _rows_of(session, Consent, org_id, survivor.id)
    theirs = await _rows_of(session, Consent, org_id, from_id)
    before: dict[str, Record | None] = {}
    taken: dict[str, Record] = {}
    events: list[str] = []
    for channel, consent in sorted(theirs.items()):
        ours = held.get(channel)
        if _rank(consent) > _rank(ours):
            before[channel] = None if ours is None else _snapshot(ours)
            taken[channel] = {**_snapshot(consent), "updated_at": iso(now)}
            _put(session, ours, Consent, org_id, survivor.id, taken[channel])
            event = ConsentEvent(
                org_id=org_id,
                persona_id=survivor.id,
                channel=channel,
                status=consent.status,
                source=ConsentSource.MERGE.value,
                occurred_at=now,
            )
            session.add(event)
            events.append(event.id.hex)
    merged_rows = [_snapshot(consent) for _, consent in sorted(theirs.items())]
    for consent in theirs.values():
        await session.delete(consent)
    text = taken.get(Channel.TEXT.value)
    if text is not None and text["status"] == OptInStatus.OPTED_OUT.value and survivor.sms_opt_out_at is None:
        survivor.sms_opt_out_at = now
        filled["sms_opt_out_at"] = encode_field(now)
    return {"merged": merged_rows, "survivor_before": before, "taken": taken, "events": events}


async def restore_consents(
    session: AsyncSession, org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID, record: Record
) -> None:
    held = await _rows_of(session, Consent, org_id, from_id)
    for channel, taken in record["taken"].items():
        current = held.get(channel)
        if current is None or not _same(current, taken):
            continue  # changed since the merge: the survivor keeps its newer consent
        before = record["survivor_before"].get(channel)
        if before is None:
            await session.delete(current)
        else:
            _put(session, current, Consent, org_id, from_id, before)
    event_ids = [uuid.UUID(hex_id) for hex_id in record["events"]]
    if event_ids:
        await session.execute(
            delete(ConsentEvent).where(col(ConsentEvent.org_id) == org_id, col(ConsentEvent.id).in_(event_ids))
        )
    present = await _rows_of(session, Consent, org_id, to_id)
    for item in record["merged"]:
        _put(session, present.get(item["channel"]), Consent, org_id, to_id, item)


# The persona's own traits -----------------------------------------------------


def encode_field(value: object) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, dt.date):  # dates and datetimes
        return value.isoformat()
    return value


def _decode_field(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if name in _UUID_FIELDS:
        return uuid.UUID(raw)
    if name in _TIME_FIELDS:
        return dt.datetime.fromisoformat(raw)
    if name in _DATE_FIELDS:
        return dt.date.fromisoformat(raw)
    return raw


def fill_fields(survivor: Persona, merged: Persona) -> Record:
    """Copy the merged persona's traits where the survivor's are NULL; the record names them."""
    filled: Record = {}
    for name in FILLABLE:
        value = getattr(merged, name)
        if value is None or getattr(survivor, name) is not None:
            continue
        if name == "referred_by_id" and value == survivor.id:
            continue  # nobody refers themselves
        setattr(survivor, name, value)
        filled[name] = encode_field(value)
    return filled


def unfill_fields(survivor: Persona, filled: Record) -> None:
    for name, raw in filled.items():
        if getattr(survivor, name) == _decode_field(name, raw):
            setattr(survivor, name, None)


def join_loyalty(survivor: Persona, merged: Persona) -> Record | None:
    """The survivor is a loyalty member if either was; None when nothing changed."""
    if survivor.loyalty_member or not merged.loyalty_member:
        return None
    record = {"signup_at_before": iso(survivor.loyalty_signup_at), "signup_at": iso(merged.loyalty_signup_at)}
    survivor.loyalty_member = True
    survivor.loyalty_signup_at = merged.loyalty_signup_at
    return record


def leave_loyalty(survivor: Persona, record: Record | None) -> None:
    if record is None or not survivor.loyalty_member:
        return
    if survivor.loyalty_signup_at == parse_time(record["signup_at"]):
        survivor.loyalty_member = False
        survivor.loyalty_signup_at = parse_time(record["signup_at_before"])
