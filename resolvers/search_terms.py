"""Search terms as SQL conditions on personas.

Each term becomes one condition on `personas`, written in exactly the form
that migration 0002 indexed: case-insensitive comparisons are lower(column)
on PostgreSQL and COLLATE nocase on SQLite; the full name is one expression
that PostgreSQL's trigram index covers; exact phone and email go through
identity_keys' primary key. Conditions on other tables are `id IN (...)`
subqueries scoped to the organization, so each reads its own index.

Relevance ranks name words: the exact name typed, then names holding each
word whole, then names with a word starting with each, then names merely
containing them. resolvers/search_sql.py puts the terms together.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models.base import UTCDateTime
from models.enums import IdentityKind, SourceKind
from models.tables import ATTRIBUTES, CONSENTS, KEYS, ORDERS, PERSONAS, ROLLUPS, STORES, TAGS
from resolvers.search import phone_e164
from resolvers.search_query import (
    AttributeIs,
    Comparison,
    ConsentIs,
    Email,
    ExactName,
    Flag,
    Phone,
    SourceIs,
    StoreIs,
    TagIs,
    Term,
)

P = PERSONAS.c

# Literal constants (not bound parameters), so the expression is the indexed one.
_EMPTY: ColumnElement[str] = literal_column("''")
_SPACE: ColumnElement[str] = literal_column("' '")
FULL_NAME: ColumnElement[str] = func.lower(
    func.coalesce(P.first_name, _EMPTY).concat(_SPACE).concat(func.coalesce(P.last_name, _EMPTY))
)
# Attribute values are indexed by their first 200 characters on PostgreSQL.
ATTRIBUTE_PREFIX = 200

Executor = AsyncConnection | AsyncSession
# An organization's id, or the named parameter a templated search binds it to.
OrgId = uuid.UUID | BindParameter[Any]


# ------------------------------------------------------------ conditions


@dataclass(frozen=True)
class Dialect:
    sqlite: bool

    @classmethod
    def of(cls, executor: Executor) -> Dialect:
        bind = executor.bind if isinstance(executor, AsyncSession) else executor
        assert bind is not None
        return cls(sqlite=bind.dialect.name == "sqlite")

    def equals(self, column: Any, value: Value) -> ColumnElement[bool]:
        """Case-insensitive equality, in the indexed form."""
        if self.sqlite:
            return column.collate("nocase") == value  # type: ignore[no-any-return]
        return func.lower(column) == func.lower(_bound(value))

    def one_of(self, column: Any, values: Sequence[Value]) -> ColumnElement[bool]:
        if self.sqlite:
            return column.collate("nocase").in_(values)  # type: ignore[no-any-return]
        return func.lower(column).in_([func.lower(_bound(v)) for v in values])


# A value typed into the search, or the named parameter a templated search binds it to.
Value = str | BindParameter[Any]


def _bound(value: Value) -> ColumnElement[str]:
    return value if isinstance(value, BindParameter) else literal(value)


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def name_contains(word: str) -> ColumnElement[bool]:
    return holds(FULL_NAME, within(word))


# What a word is looked for as, in LIKE's terms: within the text, whole, at a word's start.
def within(word: str) -> str:
    return f"%{_like_escape(word)}%"


def whole(word: str) -> str:
    return f"% {_like_escape(word)} %"


def starting(word: str) -> str:
    return f"% {_like_escape(word)}%"


def holds(text: ColumnElement[str], pattern: Value) -> ColumnElement[bool]:
    """The (lower-cased) text matches a pattern of the above, case-insensitively."""
    return text.like(func.lower(_bound(pattern)), escape="\\")


# With a space before (and after) the name, a word of it is a space and the word (and a
# space): one LIKE per word asks what four (whole word) or two (word start) would.
def spaced(name: ColumnElement[str]) -> ColumnElement[str]:
    """The name with a space either side: whole(word) finds the word whole in it (the name is it,
    starts with it and a space, ends with a space and it, or holds it spaced)."""
    return _SPACE.concat(name).concat(_SPACE)


def spaced_before(name: ColumnElement[str]) -> ColumnElement[str]:
    """The name after a space: starting(word) finds a word of it starting with the word."""
    return _SPACE.concat(name)


def whole_word(name: ColumnElement[str], word: str) -> ColumnElement[bool]:
    return holds(spaced(name), whole(word))


def word_start(name: ColumnElement[str], word: str) -> ColumnElement[bool]:
    return holds(spaced_before(name), starting(word))


def relevance(name: ColumnElement[str], words: Sequence[str]) -> ColumnElement[int]:
    """How well a full name (as FULL_NAME renders it) answers the name words, best first:
    0 the exact name typed, 1 every word whole, 2 every word starting a word, 3 the rest."""
    return case(
        (func.trim(name) == func.lower(literal(" ".join(words))), 0),
        (and_(*(whole_word(name, w) for w in words)), 1),
        (and_(*(word_start(name, w) for w in words)), 2),
        else_=3,
    )


def _persona_ids(org_id: OrgId, table: Any, *where: Any) -> ColumnElement[bool]:
    """personas.id IN (persona ids of `table` matching `where`, in this organization)."""
    return P.id.in_(select(table.c.persona_id).where(table.c.org_id == org_id, *where))


def name_splits(name: str) -> list[str]:
    """The first names a name may start with: its first word, its first two, ... all of it."""
    words = name.split(" ")
    return [" ".join(words[:k]) for k in range(1, len(words) + 1)]


def exact_name(dialect: Dialect, name: Value, splits: Sequence[Value]) -> ColumnElement[bool]:
    """A first or last name that is one of the ways to split the name (`splits`), and the whole name equal."""
    if len(splits) == 1:
        return or_(dialect.equals(P.first_name, name), dialect.equals(P.last_name, name))
    return and_(
        or_(dialect.one_of(P.first_name, splits), dialect.equals(P.last_name, name)),
        func.trim(FULL_NAME) == func.lower(_bound(name)),
    )


def identity_is(org_id: OrgId, kind: IdentityKind, value: Value | None) -> ColumnElement[bool]:
    if value is None:
        return false()
    return _persona_ids(org_id, KEYS, KEYS.c.kind == kind.value, KEYS.c.value == value)


def _compare(column: Any, operator: str, value: Any) -> ColumnElement[bool]:
    return {  # type: ignore[no-any-return]
        ">": column > value,
        ">=": column >= value,
        "<": column < value,
        "<=": column <= value,
        "=": column == value,
    }[operator]


def _rollup(org_id: uuid.UUID, column: Any, operator: str, value: Any) -> ColumnElement[bool]:
    return _persona_ids(org_id, ROLLUPS, _compare(column, operator, value))


def _at(moment: dt.datetime) -> Any:
    return literal(moment, UTCDateTime())


def _last_seen(org_id: uuid.UUID, operator: str, days: int, now: dt.datetime) -> ColumnElement[bool]:
    """Whole days since the last order, compared as the times they mean."""
    column = ROLLUPS.c.last_order_at
    day = dt.timedelta(days=1)
    since, until = _at(now - days * day), _at(now - (days + 1) * day)
    condition = {
        "<": column > since,
        "<=": column > until,
        ">": column <= until,
        ">=": column <= since,
        "=": and_(column > until, column <= since),
    }[operator]
    return _persona_ids(org_id, ROLLUPS, condition)


def _signed_up(operator: str, day: dt.date) -> ColumnElement[bool]:
    column = P.loyalty_signup_at
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    return {  # type: ignore[no-any-return]
        "<": column < _at(start),
        "<=": column < _at(end),
        ">": column >= _at(end),
        ">=": column >= _at(start),
        "=": and_(column >= _at(start), column < _at(end)),
    }[operator]


def _store(org_id: uuid.UUID, dialect: Dialect, name: str) -> ColumnElement[bool]:
    stores = select(STORES.c.id).where(STORES.c.org_id == org_id, dialect.equals(STORES.c.name, name))
    ordered_there = _persona_ids(org_id, ORDERS, ORDERS.c.store_id.in_(stores))
    return or_(P.favorite_store_id.in_(stores), ordered_there)


def _attribute(org_id: uuid.UUID, dialect: Dialect, key: str, value: str) -> ColumnElement[bool]:
    a = ATTRIBUTES.c
    if dialect.sqlite:
        matches = [dialect.equals(a.key, key), dialect.equals(a.value, value)]
    else:
        prefix = func.lower(func.substr(a.value, literal_column("1"), literal_column(str(ATTRIBUTE_PREFIX))))
        matches = [
            dialect.equals(a.key, key),
            prefix == func.lower(literal(value[:ATTRIBUTE_PREFIX])),
            func.lower(a.value) == func.lower(literal(value)),
        ]
    return _persona_ids(org_id, ATTRIBUTES, *matches)


def _flag(name: str) -> ColumnElement[bool]:
    return {
        "mobile_phone": P.phone.is_not(None),
        "email": P.email.is_not(None),
        "loyalty_member": P.loyalty_member == true(),
        "archived": P.archived_at.is_not(None),
    }[name]


def _source(dialect: Dialect, term: SourceIs) -> ColumnElement[bool]:
    if term.name is None:
        return P.source_kind == term.kind
    return and_(P.source_kind == SourceKind.INTEGRATION.value, dialect.equals(P.source_name, term.name))


def term_condition(
    term: Term, org_id: uuid.UUID, dialect: Dialect, *, region: str, now: dt.datetime
) -> ColumnElement[bool]:
    """One term as one SQL condition on personas."""
    match term:
        case ExactName(name):
            return exact_name(dialect, name, name_splits(name))
        case Email(email):
            return identity_is(org_id, IdentityKind.EMAIL, email)
        case Phone():
            return identity_is(org_id, IdentityKind.PHONE, phone_e164(term, region))
        case Flag(name):
            return _flag(name)
        case ConsentIs(channel, status):
            return _persona_ids(org_id, CONSENTS, CONSENTS.c.channel == channel, CONSENTS.c.status == status)
        case SourceIs():
            return _source(dialect, term)
        case TagIs(tag):
            return _persona_ids(org_id, TAGS, dialect.equals(TAGS.c.tag, tag))
        case AttributeIs(key, value):
            return _attribute(org_id, dialect, key, value)
        case StoreIs(name):
            return _store(org_id, dialect, name)
        case Comparison():
            return _comparison(term, org_id, now)
    raise AssertionError(f"no SQL for {term!r}")  # pragma: no cover


# The rollup column each numeric comparison reads (spent is in cents).
ROLLUP_FIELDS = {"points": "points_balance", "spent": "spend_total_cents", "orders": "orders_count"}


def _comparison(term: Comparison, org_id: uuid.UUID, now: dt.datetime) -> ColumnElement[bool]:
    if isinstance(term.value, dt.date):
        return _signed_up(term.operator, term.value)
    if term.field == "last_seen":
        return _last_seen(org_id, term.operator, term.value, now)
    return _rollup(org_id, ROLLUPS.c[ROLLUP_FIELDS[term.field]], term.operator, term.value)
