"""ingestContacts set-wise: a batch of contacts in a handful of statements.

Every row is validated first (a bad row is REJECTED before anything is
written). One statement reads the owners of all the batch's identity keys;
the rows are then planned in input order in memory (resolvers/ingest_plan.py)
and the plan is written with multi-row INSERTs and upserts, in one savepoint.

What the plan does not take goes row by row (resolvers/ingest.py, a
savepoint per row with a retry): a row whose keys belong to two personas (an
automatic merge), and every row of a segment whose write hit a unique key,
which means a concurrent transaction claimed a key of it meanwhile. After such
a row the owners are read again for the rows that follow.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Organization,
)
from models.base import one_of, utcnow
from models.enums import IdentityKind
from models.tables import ATTRIBUTES, CONSENT_EVENTS, CONSENTS, KEYS, LEGACY, PERSONAS, STORES, SUPPRESSIONS, TAGS
from resolvers.consent import contact_hash
from resolvers.errors import UserError, UserErrors
from resolvers.ingest import ingest_one
from resolvers.ingest_plan import BatchPlan, ContactRow, Known
from resolvers.ingest_rules import (
    ContactData,
    IngestOutcome,
    clean,
    errors_of,
    may_need_suppression,
    validate_contact,
)
from resolvers.numbers import claim_persona_numbers
from resolvers.turns import Turn, planning_turn
from resolvers.upsert import Writes, by_uuid, by_uuid_first


@dataclass
class RowResult:
    """What became of one row: its persona by id and number (the caller reads the rows it shows)."""

    outcome: IngestOutcome
    persona_id: uuid.UUID | None = None
    number: int | None = None
    errors: list[UserError] = field(default_factory=list)
    # The persona's row as the batch left it, when every row of the batch went set-wise (then no
    # later row of it changed the persona behind the plan's back): the payload reads nothing back.
    row: dict[str, Any] | None = None


async def ingest_contacts(
    session: AsyncSession,
    org: Organization,
    source: str,
    contacts: Sequence[ContactData],
    *,
    actor: str,
    path: list[str],
    number_block: int = 50,
) -> list[RowResult]:
    """One result per contact, in input order; the caller owns the transaction."""
    rows = [(contact, [*path, str(i)]) for i, contact in enumerate(contacts)]
    return await ingest_at(session, org, source, rows, actor=actor, number_block=number_block)


async def ingest_at(
    session: AsyncSession,
    org: Organization,
    source: str,
    contacts: Sequence[tuple[ContactData, list[str]]],
    *,
    actor: str,
    number_block: int = 50,
) -> list[RowResult]:
    """ingest_contacts, with each row's errors at the input path given with it."""
    async with planning_turn() as turn:
        results: list[RowResult | None] = [None] * len(contacts)
        pending = await _valid_rows(session, org, source, contacts, results)
        by_row = False
        while pending:
            plan = BatchPlan(org.id, await load_known(session, org.id, pending), actor)
            planned = []
            for row in pending:
                if len(plan.owners(row.keys)) > 1:
                    break  # a merge: after what is planned so far
                planned.append((row, plan.apply(row, utcnow())))
            if not planned:
                results[pending[0].index] = await _row_by_row(session, org, pending[0], actor, number_block)
                pending, by_row = pending[1:], True
                continue
            if await write_segment(session, org, plan, number_block, turn):
                for row, (persona_id, outcome) in planned:
                    persona = plan.persona(persona_id)
                    results[row.index] = RowResult(outcome, persona_id, persona["number"], row=persona)
            else:
                for row, _ in planned:
                    results[row.index] = await _row_by_row(session, org, row, actor, number_block)
                by_row = True
            pending = pending[len(planned) :]
    done = [r for r in results if r is not None]
    assert len(done) == len(results)
    if by_row:
        for result in done:
            result.row = None
    return done


def as_written(row: dict[str, Any]) -> SimpleNamespace:
    """A row the batch wrote, read as the database would give it back: attributes, times in UTC."""
    written = SimpleNamespace(**row)
    for name, value in row.items():
        if type(value) is dt.datetime and value.tzinfo is not dt.UTC:
            setattr(written, name, value.astimezone(dt.UTC))
    return written


async def payload_rows(
    session: AsyncSession,
    org_id: uuid.UUID,
    found: Iterable[tuple[uuid.UUID | None, dict[str, Any] | None]],
    read: Callable[[AsyncSession, uuid.UUID, Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, Any]]],
) -> dict[uuid.UUID, Any]:
    """Rows by id for a payload: each (id, row as written) carried, the ids without a row read."""
    rows: dict[uuid.UUID, Any] = {}
    missing: list[uuid.UUID] = []
    for row_id, row in found:
        if row_id is None or row_id in rows:
            continue
        if row is None:
            missing.append(row_id)
        else:
            rows[row_id] = as_written(row)
    if missing:
        rows.update(await read(session, org_id, [m for m in missing if m not in rows]))
    return rows


async def _valid_rows(
    session: AsyncSession,
    org: Organization,
    source: str,
    contacts: Sequence[tuple[ContactData, list[str]]],
    results: list[RowResult | None],
) -> list[ContactRow]:
    """The rows that pass validation; each other row gets its REJECTED result."""
    rows = []
    for i, (contact, where) in enumerate(contacts):
        try:
            rows.append(ContactRow(i, source, contact, validate_contact(org, contact, where), where))
        except (UserError, UserErrors) as e:
            results[i] = RowResult(IngestOutcome.REJECTED, errors=errors_of(e))
    for row, error in zip(rows, await store_errors(session, org.id, rows), strict=True):
        if error is not None:
            results[row.index] = RowResult(IngestOutcome.REJECTED, errors=[error])
    return [row for row in rows if results[row.index] is None]


async def _row_by_row(
    session: AsyncSession, org: Organization, row: ContactRow, actor: str, number_block: int
) -> RowResult:
    result = await ingest_one(
        session, org, row.source, row.contact, actor=actor, path=row.path, number_block=number_block
    )
    persona = result.persona
    return RowResult(
        result.outcome, persona.id if persona else None, persona.number if persona else None, result.errors
    )


async def store_errors(session: AsyncSession, org_id: uuid.UUID, rows: Sequence[ContactRow]) -> list[UserError | None]:
    """NOT_FOUND for each row whose favoriteStoreId names no store of the organization (one statement)."""
    wanted = {store for row in rows if (store := row.contact.favorite_store_id) is not None}
    found = set()
    if wanted:
        stmt = select(STORES.c.id).where(STORES.c.org_id == org_id, STORES.c.id.in_(sorted(wanted)))
        found = set((await session.execute(stmt)).scalars())
    return [
        UserError("NOT_FOUND", "No store with that id.", [*row.path, "favoriteStoreId"])
        if row.contact.favorite_store_id is not None and row.contact.favorite_store_id not in found
        else None
        for row in rows
    ]


def _owners() -> Any:
    """The owners of a batch's phone and email keys, with their persona rows: (kind, value, *persona)."""
    k = KEYS.c
    return (
        select(k.kind, k.value, PERSONAS)
        .join(PERSONAS, (PERSONAS.c.org_id == k.org_id) & (PERSONAS.c.id == k.persona_id))
        .where(
            k.org_id == bindparam("org"),
            or_(
                and_(k.kind == IdentityKind.PHONE.value, one_of(k.value, "phones")),
                and_(k.kind == IdentityKind.EMAIL.value, one_of(k.value, "emails")),
            ),
        )
    )


# Built once (SQLAlchemy then finds the compiled form by its cache key). PostgreSQL: each list is one
# array parameter (models.base.one_of); an IN list of 1,000 values made SQLAlchemy render and
# psycopg parse 1,000 placeholders for every batch (~0.08 ms of CPU per row, more than the read).
_OWNERS = _owners()
_PERSONA_COLUMNS = tuple(PERSONAS.c.keys())
_PERSONA_ID = _PERSONA_COLUMNS.index("id")


async def load_known(session: AsyncSession, org_id: uuid.UUID, rows: Sequence[ContactRow]) -> Known:
    """The owners of the rows' keys in one statement; their consents, the suppressed contacts and the
    legacy imports already made, each in one statement and only when a row needs them."""
    known = Known()
    phones = sorted({row.keys.phone for row in rows if row.keys.phone})
    emails = sorted({row.keys.email for row in rows if row.keys.email})
    owners = await session.execute(_OWNERS, {"org": org_id, "phones": phones, "emails": emails})
    personas = known.personas
    for kind, value, *columns in owners:
        persona_id = columns[_PERSONA_ID]
        known.owner_of[(kind, value)] = persona_id
        if persona_id not in personas:
            personas[persona_id] = dict(zip(_PERSONA_COLUMNS, columns, strict=True))
    owner_ids = sorted(known.personas, key=by_uuid)
    if owner_ids and any(row.contact.consents for row in rows):
        c = CONSENTS.c
        held = await session.execute(
            select(c.persona_id, c.channel, c.status, c.source).where(
                c.org_id == org_id, one_of(c.persona_id, None, owner_ids)
            )
        )
        for persona_id, channel, status, source in held:
            known.consents.setdefault(persona_id, {})[channel] = (status, source)
    if any(may_need_suppression(row.contact.consents) for row in rows):
        values = {*phones, *emails} | {p[name] for p in known.personas.values() for name in ("phone", "email")}
        hashes = {contact_hash(v): v for v in values if v}
        s = SUPPRESSIONS.c
        stmt = select(s.contact_hash).where(s.org_id == org_id, one_of(s.contact_hash, None, sorted(hashes)))
        known.suppressed = {hashes[h] for h in (await session.execute(stmt)).scalars()}
    imported: dict[str, set[str]] = {}  # source -> sourceIds, asked per source as the primary key serves it
    for row in rows:
        if row.contact.legacy_points and (source_id := clean(row.contact.source_id)):
            imported.setdefault(row.source, set()).add(source_id)
    if imported:
        lp = LEGACY.c
        per_source = (
            and_(lp.source == source, one_of(lp.source_id, None, sorted(ids))) for source, ids in imported.items()
        )
        stmt = select(lp.source, lp.source_id).where(lp.org_id == org_id, or_(*per_source))
        known.legacy = {(source, source_id) for source, source_id in await session.execute(stmt)}
    return known


async def write_segment(
    session: AsyncSession, org: Organization, plan: BatchPlan, number_block: int, turn: Turn | None = None
) -> bool:
    """Write the plan in one savepoint; False (and nothing written) when a unique key was taken meanwhile."""
    writes = Writes(session, turn)
    try:
        async with writes.savepoint():
            await write_contacts(writes, org, plan, number_block)
            await plan.rollups.write(writes, org.id)
            await write_legacy_imports(writes, plan)
    except IntegrityError:
        return False
    return True


async def write_contacts(writes: Writes, org: Organization, plan: BatchPlan, number_block: int) -> None:
    """The personas, keys, traits, attributes, tags and consents of the plan (not its points)."""
    numbers = await claim_persona_numbers(writes.session, org.id, len(plan.new), number_block)
    for persona, number in zip(plan.new.values(), numbers, strict=True):
        persona["number"] = number
    await writes.insert(PERSONAS, list(plan.new.values()))
    # In one order in every transaction: two batches claiming the same keys queue, never deadlock.
    await writes.insert(KEYS, sorted(plan.keys, key=lambda k: (k["kind"], k["value"])))
    await _update_personas(writes, org.id, plan)
    await writes.insert(_attribute_upsert, [plan.attributes[k] for k in sorted(plan.attributes, key=by_uuid_first)])
    await writes.insert(_tag_upsert, [plan.tags[k] for k in sorted(plan.tags, key=by_uuid_first)])
    await writes.insert(_consent_upsert, [plan.consents[k] for k in sorted(plan.consents, key=by_uuid_first)])
    await writes.insert(CONSENT_EVENTS, plan.events)


def _attribute_upsert(insert: Callable[[Table], Any]) -> Any:
    a = ATTRIBUTES.c
    stmt = insert(ATTRIBUTES)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[a.org_id, a.persona_id, a.key],
        set_={"value": new.value, "source": new.source, "updated_at": new.updated_at},
        where=a.value != new.value,
    )


def _tag_upsert(insert: Callable[[Table], Any]) -> Any:
    return insert(TAGS).on_conflict_do_nothing()


def _consent_upsert(insert: Callable[[Table], Any]) -> Any:
    c = CONSENTS.c
    stmt = insert(CONSENTS)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[c.org_id, c.persona_id, c.channel],
        set_={"status": new.status, "source": new.source, "updated_at": new.updated_at},
    )


async def _update_personas(writes: Writes, org_id: uuid.UUID, plan: BatchPlan) -> None:
    """Known personas get the columns the batch changed on them: one executemany per set of columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for persona_id in sorted(plan.changed, key=by_uuid):
        columns = tuple(sorted(plan.changed[persona_id]))
        persona = plan.known.personas[persona_id]
        groups[columns].append({"b_org": org_id, "b_id": persona_id, **{c: persona[c] for c in columns}})
    if not groups:
        return
    # Locked first, all at once and in id order: two batches that change the same personas
    # (in different column groups) then queue on the first one instead of deadlocking.
    # SQLite has one write lock for the file and renders no FOR UPDATE.
    await writes.flush()
    session, p = writes.session, PERSONAS.c
    await session.execute(
        select(p.id)
        .where(p.org_id == org_id, one_of(p.id, None, sorted(plan.changed, key=by_uuid)))
        .order_by(p.id)
        .with_for_update()
    )
    stmt = update(PERSONAS).where(PERSONAS.c.org_id == bindparam("b_org"), PERSONAS.c.id == bindparam("b_id"))
    for params in groups.values():
        await session.execute(stmt, params)


async def write_legacy_imports(writes: Writes, plan: BatchPlan) -> None:
    """After the ledger entries they point at (RollupBatch.write gives the entries their ids)."""
    await writes.insert(LEGACY, [{**row, "entry_id": posting.id} for row, posting in plan.legacy])
