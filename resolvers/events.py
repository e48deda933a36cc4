"""Engagement events from integrated systems: messages, survey submissions,
campaign actions and pixel events, each landing on an existing persona.

Events never create personas: a row names its persona by number, phone or
email, and an unknown one is REJECTED with NOT_FOUND. Rows are idempotent on
(source, externalId) within their kind; one bad row never fails or
half-writes the others. An inbound text whose body is a carrier keyword
(STOP, START, ...) changes the persona's TEXT consent as the customer's own
choice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Table, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import IdentityKey, Message, Organization, Persona, PersonaAction, PixelEvent, SurveySubmission
from models.enums import Channel, ConsentSource, MessageChannel, MessageDirection, OptInStatus
from models.tables import MESSAGES, PERSONA_ACTIONS, PIXEL_EVENTS, SURVEY_SUBMISSIONS
from resolvers.consent import record_consent
from resolvers.errors import UserError
from resolvers.identity import ContactKeys, contact_keys
from resolvers.upsert import insert_rows

# Carrier keywords (CTIA): compared after trimming, in any case.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})
TEXT_CHANNELS = frozenset({MessageChannel.SMS.value, MessageChannel.MMS.value})
# A chain of merges is short; the bound only guards against a corrupt cycle.
MAX_MERGE_HOPS = 20
MAX_RACE_RETRIES = 3


class EventKind(StrEnum):
    MESSAGE = "MESSAGE"
    SURVEY = "SURVEY"
    ACTION = "ACTION"
    PIXEL = "PIXEL"


class EventOutcome(StrEnum):
    RECORDED = "RECORDED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"


@dataclass
class EventData:
    """One event row, as its GraphQL input carries it (None: not given)."""

    external_id: str
    source: str
    kind: EventKind
    occurred_at: dt.datetime
    persona_number: int | None = None
    phone: str | None = None
    email: str | None = None
    direction: str | None = None
    channel: str | None = None
    body: str | None = None
    campaign: str | None = None
    survey_name: str | None = None
    survey_status: str | None = None
    answers: list[tuple[str, str | None]] | None = None
    action_kind: str | None = None
    detail: str | None = None
    site: str | None = None
    event: str | None = None
    url: str | None = None


@dataclass
class EventResult:
    outcome: EventOutcome
    persona: Persona | None = None
    errors: list[UserError] = field(default_factory=list)


@dataclass(frozen=True)
class KindSpec:
    table: Table
    # (attribute, GraphQL input name) of each field the kind cannot do without.
    required: tuple[tuple[str, str], ...]


KINDS: dict[EventKind, KindSpec] = {
    EventKind.MESSAGE: KindSpec(MESSAGES, (("direction", "direction"), ("channel", "channel"), ("body", "body"))),
    EventKind.SURVEY: KindSpec(SURVEY_SUBMISSIONS, (("survey_name", "surveyName"), ("survey_status", "surveyStatus"))),
    EventKind.ACTION: KindSpec(PERSONA_ACTIONS, (("action_kind", "actionKind"),)),
    EventKind.PIXEL: KindSpec(PIXEL_EVENTS, (("site", "site"), ("event", "event"))),
}

# The column widths, so an overlong value is INVALID rather than a driver error.
MAX_LENGTHS: tuple[tuple[str, str, int], ...] = (
    ("external_id", "externalId", 200),
    ("source", "source", 200),
    ("campaign", "campaign", 200),
    ("survey_name", "surveyName", 200),
    ("site", "site", 300),
    ("event", "event", 200),
    ("url", "url", 2000),
)


def validate_event(data: EventData, path: list[str]) -> list[UserError]:
    """Every missing or malformed field of the row, each naming its input path."""
    errors: list[UserError] = []
    for attr, name in (("external_id", "externalId"), ("source", "source")):
        if not getattr(data, attr).strip():
            errors.append(UserError("INVALID", f"{name} may not be empty.", [*path, name]))
    if data.occurred_at.tzinfo is None:
        errors.append(UserError("INVALID", "occurredAt needs a time zone.", [*path, "occurredAt"]))
    if data.persona_number is None and data.phone is None and data.email is None:
        errors.append(
            UserError("INVALID", "Name the persona: personaNumber, phone or email.", [*path, "personaNumber"])
        )
    for attr, name in KINDS[data.kind].required:
        value = getattr(data, attr)
        # A message body may be empty (a picture message); names may not be blank.
        blank = isinstance(value, str) and not value.strip() and attr != "body"
        if value is None or blank:
            errors.append(UserError("INVALID", f"A {data.kind.value} event needs {name}.", [*path, name]))
    for attr, name, limit in MAX_LENGTHS:
        value = getattr(data, attr)
        if isinstance(value, str) and len(value) > limit:
            errors.append(UserError("INVALID", f"{name} is longer than {limit} characters.", [*path, name]))
    for i, (question, _) in enumerate(data.answers or []):
        if not question.strip():
            errors.append(UserError("INVALID", "question may not be empty.", [*path, "answers", str(i), "question"]))
    return errors


async def record_events(
    session: AsyncSession, org: Organization, events: Sequence[EventData], *, path: list[str]
) -> list[EventResult]:
    """One result per event, in order; the caller owns the transaction.

    A batch costs a handful of statements, not a few per row: personas and
    replays are looked up for all rows at once and the new rows of each kind
    go in with one INSERT, in a savepoint. A row is recorded whole or not at
    all. Should the INSERT meet a concurrent call's copy of an event (a
    unique-key race), it is rolled back and the batch sorted again, and the
    copy then reads as DUPLICATE.
    """
    paths = [[*path, str(i)] for i in range(len(events))]
    invalid = {i: errors for i, data in enumerate(events) if (errors := validate_event(data, paths[i]))}
    for _ in range(MAX_RACE_RETRIES):
        results, new_rows = await _sort_rows(session, org, events, paths, invalid)
        if await _insert_all(session, org.id, [(events[i], _recorded_persona(results[i])) for i in new_rows]):
            for i in new_rows:
                await _apply_keyword(session, org.id, _recorded_persona(results[i]), events[i])
            return results
    raise RuntimeError("recordEvents kept meeting concurrent copies of the same events")


async def _sort_rows(
    session: AsyncSession,
    org: Organization,
    events: Sequence[EventData],
    paths: list[list[str]],
    invalid: dict[int, list[UserError]],
) -> tuple[list[EventResult], list[int]]:
    """Each row's outcome, and which rows are new (RECORDED once inserted)."""
    results = [EventResult(EventOutcome.REJECTED, errors=invalid.get(i, [])) for i in range(len(events))]
    valid = [i for i in range(len(events)) if i not in invalid]
    earlier = await _recorded_before(session, org.id, [events[i] for i in valid])
    found = await batch_personas(session, org, [(events[i], paths[i]) for i in valid])
    taken: dict[tuple[EventKind, str, str], Persona] = {}
    new_rows: list[int] = []
    for i, persona_or_errors in zip(valid, found, strict=True):
        key = (events[i].kind, events[i].source, events[i].external_id)
        if key in earlier or key in taken:
            results[i] = EventResult(EventOutcome.DUPLICATE, persona=earlier[key] if key in earlier else taken[key])
        elif isinstance(persona_or_errors, list):
            results[i] = EventResult(EventOutcome.REJECTED, errors=persona_or_errors)
        else:
            taken[key] = persona_or_errors
            new_rows.append(i)
            results[i] = EventResult(EventOutcome.RECORDED, persona=persona_or_errors)
    return results, new_rows


def _recorded_persona(result: EventResult) -> Persona:
    assert result.persona is not None
    return result.persona


async def _insert_all(session: AsyncSession, org_id: uuid.UUID, rows: list[tuple[EventData, Persona]]) -> bool:
    """One INSERT per kind in a savepoint; False (and nothing written) on a unique-key race."""
    if not rows:
        return True
    by_kind: dict[EventKind, list[dict[str, Any]]] = {}
    for data, persona in rows:
        by_kind.setdefault(data.kind, []).append(_row(org_id, persona.id, data).model_dump())
    savepoint = await session.begin_nested()
    try:
        for kind, values in by_kind.items():
            await insert_rows(session, KINDS[kind].table, values)
    except IntegrityError:
        await savepoint.rollback()
        return False
    await savepoint.commit()
    return True


async def _recorded_before(
    session: AsyncSession, org_id: uuid.UUID, events: Sequence[EventData]
) -> dict[tuple[EventKind, str, str], Persona]:
    """The rows already stored under these (source, externalId) keys, with their (surviving) personas."""
    owners: dict[tuple[EventKind, str, str], uuid.UUID] = {}
    for kind in EventKind:
        pairs = sorted({(e.source, e.external_id) for e in events if e.kind is kind})
        table = KINDS[kind].table
        for chunk in _chunks(pairs):
            stmt = select(table.c.source, table.c.external_id, table.c.persona_id).where(
                table.c.org_id == org_id, tuple_(table.c.source, table.c.external_id).in_(chunk)
            )
            for row in await session.execute(stmt):
                owners[(kind, row.source, row.external_id)] = row.persona_id
    personas = await _personas_by_id(session, org_id, set(owners.values()))
    return {key: personas[persona_id] for key, persona_id in owners.items() if persona_id in personas}


async def _personas_by_id(session: AsyncSession, org_id: uuid.UUID, ids: set[uuid.UUID]) -> dict[uuid.UUID, Persona]:
    """Each id's persona, or the survivor it was merged into (erased ones too: callers decide)."""
    loaded: dict[uuid.UUID, Persona] = {}
    wanted = set(ids)
    for _ in range(MAX_MERGE_HOPS):
        missing = wanted - loaded.keys()
        if not missing:
            break
        for chunk in _chunks(sorted(missing)):
            stmt = select(Persona).where(col(Persona.org_id) == org_id, col(Persona.id).in_(chunk))
            for persona in (await session.execute(stmt)).scalars():
                loaded[persona.id] = persona
        wanted = {p.merged_into_id for p in loaded.values() if p.merged_into_id is not None}
    return {persona_id: _follow(loaded, loaded[persona_id]) for persona_id in ids if persona_id in loaded}


def _follow(loaded: dict[uuid.UUID, Persona], persona: Persona) -> Persona:
    for _ in range(MAX_MERGE_HOPS):
        if persona.merged_into_id is None or persona.merged_into_id not in loaded:
            break
        persona = loaded[persona.merged_into_id]
    return persona


async def batch_personas(
    session: AsyncSession, org: Organization, rows: Sequence[tuple[EventData, list[str]]]
) -> list[Persona | list[UserError]]:
    """Per row, the live persona it names (number first, else phone, else email) or its errors."""
    keys: list[ContactKeys | None] = []
    errors: dict[int, list[UserError]] = {}
    for n, (data, path) in enumerate(rows):
        if data.persona_number is not None:
            keys.append(None)
            continue
        found, bad = contact_keys(data.phone, data.email, org.default_region, path)
        keys.append(found)
        if bad:
            errors[n] = list(bad)
    numbers = sorted({d.persona_number for d, _ in rows if d.persona_number is not None})
    by_number: dict[int, uuid.UUID] = {}
    for some_numbers in _chunks(numbers):
        numbered = await session.execute(
            select(col(Persona.number), col(Persona.id)).where(
                col(Persona.org_id) == org.id, col(Persona.number).in_(some_numbers)
            )
        )
        by_number.update((number, persona_id) for number, persona_id in numbered.all())
    pairs = sorted({pair for k in keys if k is not None for pair in k.pairs()})
    by_key: dict[tuple[str, str], uuid.UUID] = {}
    for some_pairs in _chunks(pairs):
        held = await session.execute(
            select(col(IdentityKey.kind), col(IdentityKey.value), col(IdentityKey.persona_id)).where(
                col(IdentityKey.org_id) == org.id, tuple_(col(IdentityKey.kind), col(IdentityKey.value)).in_(some_pairs)
            )
        )
        by_key.update({(kind, value): persona_id for kind, value, persona_id in held.all()})
    named: list[uuid.UUID | None] = []
    for (data, _), k in zip(rows, keys, strict=True):
        if k is None:
            named.append(by_number.get(data.persona_number or 0))
        else:
            # Events never merge: the phone's persona first, then the email's.
            named.append(next((by_key[p] for p in k.pairs() if p in by_key), None))
    personas = await _personas_by_id(session, org.id, {i for i in named if i is not None})
    out: list[Persona | list[UserError]] = []
    for n, ((data, path), persona_id) in enumerate(zip(rows, named, strict=True)):
        persona = personas.get(persona_id) if persona_id is not None else None
        if n in errors:
            out.append(errors[n])
        elif persona is None or persona.erased_at is not None:
            out.append([_not_found(data, path)])
        else:
            out.append(persona)
    return out


def _not_found(data: EventData, path: list[str]) -> UserError:
    at = "personaNumber" if data.persona_number is not None else "phone" if data.phone is not None else "email"
    return UserError("NOT_FOUND", "No persona has that number, phone or email; events never create one.", [*path, at])


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = 400) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _row(org_id: uuid.UUID, persona_id: uuid.UUID, data: EventData) -> Any:
    common: dict[str, Any] = {
        "org_id": org_id,
        "persona_id": persona_id,
        "source": data.source,
        "external_id": data.external_id,
    }
    if data.kind is EventKind.MESSAGE:
        return Message(
            **common,
            direction=str(data.direction),
            channel=str(data.channel),
            body=data.body or "",
            campaign=data.campaign,
            sent_at=data.occurred_at,
        )
    if data.kind is EventKind.SURVEY:
        return SurveySubmission(
            **common,
            survey_name=(data.survey_name or "").strip(),
            status=str(data.survey_status),
            answers=[{"question": q.strip(), "answer": a} for q, a in data.answers or []],
            submitted_at=data.occurred_at,
        )
    if data.kind is EventKind.ACTION:
        return PersonaAction(
            **common,
            kind=str(data.action_kind),
            campaign=data.campaign,
            detail=data.detail,
            occurred_at=data.occurred_at,
        )
    return PixelEvent(
        **common,
        site=(data.site or "").strip(),
        event=(data.event or "").strip(),
        url=data.url,
        occurred_at=data.occurred_at,
    )


def keyword_consent(data: EventData) -> OptInStatus | None:
    """The TEXT consent an inbound text's body asks for, if it is a carrier keyword."""
    if data.kind is not EventKind.MESSAGE or data.direction != MessageDirection.INBOUND.value:
        return None
    if data.channel not in TEXT_CHANNELS or data.body is None:
        return None
    keyword = data.body.strip().upper()
    if keyword in OPT_OUT_KEYWORDS:
        return OptInStatus.OPTED_OUT
    if keyword in OPT_IN_KEYWORDS:
        return OptInStatus.OPTED_IN
    return None


async def _apply_keyword(session: AsyncSession, org_id: uuid.UUID, persona: Persona, data: EventData) -> None:
    status = keyword_consent(data)
    if status is not None:
        await record_consent(
            session, org_id, persona, channel=Channel.TEXT.value, status=status, source=ConsentSource.CUSTOMER
        )
