"""Audiences: saved smart searches with a points multiplier.

An audience holds the personas its query finds (resolvers/search.py) that
have PII; the default audience ALL has the empty query, so it holds every
listed persona with a phone or email. Membership is computed, never stored:
it follows the personas' data as it changes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Row, Select, bindparam, cast, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Audience, Organization
from models.base import one_of
from models.tables import AUDIENCES, ORGANIZATIONS, PERSONAS
from resolvers.amounts import decimal_to_milli
from resolvers.errors import BadQuery, UserError, UserErrors
from resolvers.search import parse_search
from resolvers.search_query import Comparison
from resolvers.search_sql import CompiledSearch, compile_search
from resolvers.search_terms import Dialect, Executor

NO_BOOST = 1000
MAX_MULTIPLIER = Decimal(10)
# Audiences per membership statement: each repeats the persona ids, and
# SQLite caps a statement's parameters and compound selects.
AUDIENCES_PER_STATEMENT = 20


def audience_search(row: Any, org_id: uuid.UUID, dialect: Dialect, region: str) -> CompiledSearch:
    """The audience's personas as a compiled search; BadQuery if its stored query no longer parses."""
    return compile_search(parse_search(row.query), org_id, dialect, region=region, with_pii=True)


def _ordered(stmt: Any) -> Any:
    return stmt.order_by(AUDIENCES.c.is_default.desc(), AUDIENCES.c.name, AUDIENCES.c.id)


# The organization's audiences (bound as {"org_id": ...}), ALL first, then by name; each
# row carries the org's region. Built once: loaders read it through Database.select.
AUDIENCES_OF: Select[Any] = _ordered(
    select(AUDIENCES, ORGANIZATIONS.c.default_region)
    .join(ORGANIZATIONS, ORGANIZATIONS.c.id == AUDIENCES.c.org_id)
    .where(AUDIENCES.c.org_id == bindparam("org_id"))
)


async def list_audiences(conn: Executor, org_id: uuid.UUID) -> list[Row[Any]]:
    """The organization's audiences, ALL first, then by name; each row carries the org's region."""
    return list((await conn.execute(AUDIENCES_OF, {"org_id": org_id})).all())


async def audience_by_id(conn: Executor, org_id: uuid.UUID, audience_id: uuid.UUID) -> Row[Any] | None:
    stmt = (
        select(AUDIENCES, ORGANIZATIONS.c.default_region)
        .join(ORGANIZATIONS, ORGANIZATIONS.c.id == AUDIENCES.c.org_id)
        .where(AUDIENCES.c.org_id == org_id, AUDIENCES.c.id == audience_id)
    )
    return (await conn.execute(stmt)).first()


# Membership statements by organization, dialect and audiences (index, id, query, region): built
# once while the audiences stay as they are. A search on last_seen depends on the time it is
# compiled at, so one with such a term is built anew each time.
_MEMBERSHIP_STATEMENTS: dict[tuple[Any, ...], Any] = {}
MEMBERSHIP_STATEMENTS_KEPT = 512


def _uses_the_time(row: Any) -> bool:
    try:
        query = parse_search(row.query)
    except BadQuery:
        return False
    return any(isinstance(t, Comparison) and t.field == "last_seen" for t in query.terms)


def membership_statement(chunk: Sequence[tuple[int, Any]], org_id: uuid.UUID, dialect: Dialect) -> Any:
    """One UNION ALL of the chunk's audience searches over the personas bound as `persona_ids`
    (None when none of them parses); the audience's list index tells the rows apart."""
    key = (org_id, dialect, tuple((i, *_searched(r)) for i, r in chunk))
    found = _MEMBERSHIP_STATEMENTS.get(key)
    if found is not None:
        return found
    selects = []
    for index, row in chunk:
        try:
            search = audience_search(row, org_id, dialect, row.default_region)
        except BadQuery:
            continue  # saved before the grammar changed: it holds nobody until fixed
        selects.append(
            select(cast(literal(index), Integer).label("audience"), PERSONAS.c.id.label("persona_id")).where(
                *search.conditions, one_of(PERSONAS.c.id, "persona_ids")
            )
        )
    if not selects:
        return None
    stmt = selects[0] if len(selects) == 1 else union_all(*selects)
    if not any(_uses_the_time(row) for _, row in chunk):
        if len(_MEMBERSHIP_STATEMENTS) >= MEMBERSHIP_STATEMENTS_KEPT:
            _MEMBERSHIP_STATEMENTS.clear()
        _MEMBERSHIP_STATEMENTS[key] = stmt
    return stmt


async def memberships(
    conn: Executor, org_id: uuid.UUID, persona_ids: Sequence[uuid.UUID], audiences: Sequence[Any] | None = None
) -> dict[uuid.UUID, list[Any]]:
    """For each persona, the audiences it is in (in list order): one statement per 20 audiences."""
    if audiences is None:
        audiences = await list_audiences(conn, org_id)

    async def run(stmt: Any, params: dict[str, Any]) -> Iterable[Any]:
        return await conn.execute(stmt, params)

    return await memberships_by(run, Dialect.of(conn), org_id, persona_ids, audiences)


async def memberships_by(
    run: Callable[[Any, dict[str, Any]], Awaitable[Iterable[Any]]],
    dialect: Dialect,
    org_id: uuid.UUID,
    persona_ids: Sequence[uuid.UUID],
    audiences: Sequence[Any],
) -> dict[uuid.UUID, list[Any]]:
    """memberships() with the statements sent by `run` (e.g. a request's coalesced reads)."""
    if not persona_ids:
        return defaultdict(list)
    ids = list(persona_ids)
    found = [await run(stmt, {"persona_ids": ids}) for stmt in membership_statements(audiences, org_id, dialect)]
    return members(found, audiences, ids)


def membership_statements(audiences: Sequence[Any], org_id: uuid.UUID, dialect: Dialect) -> list[Any]:
    """The statements that find the audiences' members among the personas bound as `persona_ids`."""
    chunks = [
        list(enumerate(audiences))[start : start + AUDIENCES_PER_STATEMENT]
        for start in range(0, len(audiences), AUDIENCES_PER_STATEMENT)
    ]
    return [stmt for chunk in chunks if (stmt := membership_statement(chunk, org_id, dialect)) is not None]


def members(
    found: Iterable[Iterable[Any]], audiences: Sequence[Any], persona_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Any]]:
    """For each persona, the audiences (rows of `audiences`, in list order) the membership
    statements' rows (`found`, one list per statement) put it in."""
    hits = {(int(r.audience), r.persona_id) for rows in found for r in rows}
    by_persona: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for index, row in enumerate(audiences):
        for persona_id in persona_ids:
            if (index, persona_id) in hits:
                by_persona[persona_id].append(row)
    return by_persona


def _searched(row: Any) -> tuple[Any, ...]:
    """What an audience's membership statement is built from."""
    return (row.id, row.query, row.default_region)


def same_searches(before: Sequence[Any], now: Sequence[Any]) -> bool:
    """Whether two audience lists give the same membership statements."""
    return [_searched(r) for r in before] == [_searched(r) for r in now]


async def best_multiplier_milli(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID) -> int:
    """The largest points multiplier (in thousandths) among the persona's audiences; 1000 when none boosts.

    Reads the persona as the session has it now (pending changes are flushed first),
    so call it at the point of accrual.
    """
    await session.flush()
    boosting = [a for a in await list_audiences(session, org_id) if a.points_multiplier_milli > NO_BOOST]
    if not boosting:
        return NO_BOOST
    mine = (await memberships(session, org_id, [persona_id], boosting)).get(persona_id, [])
    return max((a.points_multiplier_milli for a in mine), default=NO_BOOST)


# -------------------------------------------------------------- mutations

NAME, QUERY, MULTIPLIER = ["input", "name"], ["input", "query"], ["input", "pointsMultiplier"]


def _multiplier_milli(value: Decimal) -> int:
    if not value.is_finite() or value < 1 or value > MAX_MULTIPLIER:
        raise UserError("INVALID", f"pointsMultiplier must be between 1 and {MAX_MULTIPLIER}.", MULTIPLIER)
    if value != value.quantize(Decimal("0.001")):
        raise UserError("INVALID", "pointsMultiplier has at most three decimal places.", MULTIPLIER)
    return decimal_to_milli(value)


async def _region(session: AsyncSession, org_id: uuid.UUID) -> str:
    org = await session.get(Organization, org_id)
    assert org is not None, "the viewer's organization exists"
    return org.default_region


async def _check_query(session: AsyncSession, org_id: uuid.UUID, query: str) -> list[UserError]:
    try:
        parsed = parse_search(query)
        region = await _region(session, org_id) if parsed.has_phone else "US"
        compile_search(parsed, org_id, Dialect.of(session), region=region)
    except BadQuery as e:
        return [UserError("BAD_QUERY", e.message, QUERY)]
    if parsed.is_empty:
        return [UserError("INVALID", "An audience needs a query: the default audience ALL holds everyone.", QUERY)]
    return []


async def _name_taken(session: AsyncSession, org_id: uuid.UUID, name: str, audience_id: uuid.UUID | None) -> bool:
    stmt = select(col(Audience.id)).where(col(Audience.org_id) == org_id, col(Audience.name) == name)
    if audience_id is not None:
        stmt = stmt.where(col(Audience.id) != audience_id)
    return (await session.execute(stmt)).first() is not None


async def _existing(session: AsyncSession, org_id: uuid.UUID, audience_id: uuid.UUID) -> Audience:
    audience = await session.get(Audience, (org_id, audience_id))
    if audience is None:
        raise UserError("NOT_FOUND", "No audience with that id.", ["input", "id"])
    return audience


async def save_audience(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    audience_id: uuid.UUID | None,
    name: str,
    query: str,
    points_multiplier: Decimal | None,
) -> Audience:
    """Create an audience, or update one when audience_id is given; every problem at once."""
    audience = await _existing(session, org_id, audience_id) if audience_id is not None else None
    name, query = name.strip(), query.strip()
    errors: list[UserError] = []
    if not name or len(name) > 200:
        errors.append(UserError("INVALID", "An audience needs a name of 1 to 200 characters.", NAME))
    elif await _name_taken(session, org_id, name, audience_id):
        errors.append(UserError("DUPLICATE", f"An audience named {name!r} exists already.", NAME))
    if audience is not None and audience.is_default:
        if query or name != audience.name:
            message = "The default audience ALL always holds everyone: only its pointsMultiplier can change."
            errors.append(UserError("INVALID", message, QUERY if query else NAME))
    else:
        errors += await _check_query(session, org_id, query)
    milli = NO_BOOST if audience is None else audience.points_multiplier_milli
    if points_multiplier is not None:
        try:
            milli = _multiplier_milli(points_multiplier)
        except UserError as e:
            errors.append(e)
    if errors:
        raise UserErrors(errors)
    if audience is None:
        audience = Audience(org_id=org_id, name=name, query=query, points_multiplier_milli=milli)
        session.add(audience)
    else:
        audience.name, audience.query, audience.points_multiplier_milli = name, query, milli
    await session.flush()
    return audience


async def delete_audience(session: AsyncSession, org_id: uuid.UUID, audience_id: uuid.UUID) -> Audience:
    """Delete an audience and return it as it was; the default audience ALL stays."""
    audience = await _existing(session, org_id, audience_id)
    if audience.is_default:
        raise UserError("INVALID", "The default audience ALL cannot be deleted.", ["input", "id"])
    await session.delete(audience)
    await session.flush()
    return audience
