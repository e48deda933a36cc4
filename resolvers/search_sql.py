"""Parsed searches as SQL over personas: the conditions of a whole search, on top of
the Personas page's rules (each term's condition: resolvers/search_terms.py), and the
templates of the searches whose SQL is the same for every value typed.

Results come by relevance, then newest first (resolvers/search_pages.py); the keyset
cursor carries the relevance too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

from sqlalchemy import (
    ColumnElement,
    bindparam,
    or_,
    select,
)

from models.base import utcnow
from models.enums import IdentityKind
from models.tables import KEYS, ORGANIZATIONS, PERSONAS
from resolvers.persona import listed_personas
from resolvers.search import parse_search, phone_e164
from resolvers.search_names import OneWord
from resolvers.search_query import Email, ExactName, Phone, SearchQuery
from resolvers.search_terms import (
    FULL_NAME,
    Dialect,
    Executor,
    OrgId,
    Value,
    exact_name,
    identity_is,
    name_contains,
    name_splits,
    relevance,
    term_condition,
)

P = PERSONAS.c


# What a templated search's SQL depends on besides its values: the term's kind ("EMAIL", "PHONE" or
# "NAME"), the words of a quoted name, include_archived, with_pii, SQLite.
TemplateShape = tuple[str, int, bool, bool, bool]


@dataclass(frozen=True)
class SearchTemplate:
    """A search whose SQL is the same for every value typed (an exact email, phone or quoted
    name alone): its conditions are built once per `shape` with named parameters
    (template_conditions), and each search binds `params`. Building a search's expressions
    took more of a one-row lookup's CPU than running it (~3 ms of ~10 in-process)."""

    shape: TemplateShape
    params: dict[str, Any]


class LazyConditions(Sequence[ColumnElement[bool]]):
    """A templated search's conditions with its values, built only when something other than
    its page asks for them (an export, a count, an audience)."""

    def __init__(self, build: Callable[[], list[ColumnElement[bool]]]) -> None:
        self._build = build
        self._built: list[ColumnElement[bool]] | None = None

    def _conditions(self) -> list[ColumnElement[bool]]:
        if self._built is None:
            self._built = self._build()
        return self._built

    def __len__(self) -> int:
        return len(self._conditions())

    @overload
    def __getitem__(self, index: int) -> ColumnElement[bool]: ...

    @overload
    def __getitem__(self, index: slice) -> list[ColumnElement[bool]]: ...

    def __getitem__(self, index: int | slice) -> ColumnElement[bool] | list[ColumnElement[bool]]:
        return self._conditions()[index]


@dataclass(frozen=True)
class CompiledSearch:
    """The WHERE of a search, and its relevance (None when every match ranks alike).

    `selective`: an exact email, phone or quoted name narrows the matches to a
    handful, so counting them costs nothing next to finding them."""

    conditions: Sequence[ColumnElement[bool]]
    rank: ColumnElement[int] | None
    selective: bool = False
    # The bare name words that `rank` ranks by (relevance(FULL_NAME, name_words)).
    name_words: tuple[str, ...] = ()
    template: SearchTemplate | None = None
    # One name word and nothing else, on PostgreSQL: its first page comes from the name parts.
    one_word: OneWord | None = None


_TEMPLATE_ORG = bindparam("search_org", type_=P.org_id.type)
_TEMPLATE_CONDITIONS: dict[TemplateShape, list[ColumnElement[bool]]] = {}
TEMPLATES_KEPT = 256  # a quoted name's word count is the client's to choose: kept bounded


def _listed(org_id: OrgId, *, include_archived: bool, with_pii: bool) -> list[ColumnElement[bool]]:
    """The Personas page's rules (and, for an audience, personas with PII only)."""
    conditions: list[ColumnElement[bool]] = list(listed_personas(org_id, include_archived=include_archived))
    if with_pii:
        conditions.append(or_(P.phone.is_not(None), P.email.is_not(None)))
    return conditions


def _one_term(shape: TemplateShape, org_id: OrgId, values: Sequence[Value]) -> list[ColumnElement[bool]]:
    """A templated search's conditions: with the values typed, or with their named parameters."""
    kind, _words, include_archived, with_pii, sqlite = shape
    if kind == "NAME":
        term = exact_name(Dialect(sqlite=sqlite), values[0], values[1:])
    else:
        term = identity_is(org_id, IdentityKind(kind.lower()), values[0])
    return [*_listed(org_id, include_archived=include_archived, with_pii=with_pii), term]


def template_conditions(shape: TemplateShape) -> list[ColumnElement[bool]]:
    """A templated search's conditions with its named parameters (search_org, search_0, ...)."""
    found = _TEMPLATE_CONDITIONS.get(shape)
    if found is None:
        if len(_TEMPLATE_CONDITIONS) >= TEMPLATES_KEPT:
            _TEMPLATE_CONDITIONS.clear()
        words = shape[1]
        names = [bindparam(f"search_{n}", type_=KEYS.c.value.type) for n in range(1 + words)]
        found = _TEMPLATE_CONDITIONS[shape] = _one_term(shape, _TEMPLATE_ORG, names)
    return found


def _templated(
    query: SearchQuery, org_id: uuid.UUID, region: str, *, include_archived: bool, with_pii: bool, sqlite: bool
) -> CompiledSearch | None:
    """An exact email, phone or quoted name and nothing else: the same SQL whatever the value."""
    if len(query.terms) != 1 or query.name_words:
        return None
    term = query.terms[0]
    values: list[str]
    if isinstance(term, Email):
        kind, values = "EMAIL", [term.email]
    elif isinstance(term, Phone):
        e164 = phone_e164(term, region)
        if e164 is None:
            return None
        kind, values = "PHONE", [e164]
    elif isinstance(term, ExactName):
        kind, values = "NAME", [term.name, *name_splits(term.name)]
    else:
        return None
    shape: TemplateShape = (kind, len(values) - 1 if kind == "NAME" else 0, include_archived, with_pii, sqlite)
    params = {"search_org": org_id} | {f"search_{n}": value for n, value in enumerate(values)}
    conditions = LazyConditions(lambda: _one_term(shape, org_id, values))
    return CompiledSearch(conditions, None, selective=True, template=SearchTemplate(shape, params))


def compile_search(
    query: SearchQuery,
    org_id: uuid.UUID,
    dialect: Dialect,
    *,
    region: str = "US",
    include_archived: bool = False,
    with_pii: bool = False,
    now: dt.datetime | None = None,
) -> CompiledSearch:
    """The conditions of a parsed search, on top of the Personas page's rules.

    Raises SearchSyntaxError for a phone number that is not one (it needs the region).
    """
    archived = include_archived or query.archived
    templated = _templated(query, org_id, region, include_archived=archived, with_pii=with_pii, sqlite=dialect.sqlite)
    if templated is not None:
        return templated
    now = now or utcnow()
    conditions = _listed(org_id, include_archived=include_archived or query.archived, with_pii=with_pii)
    conditions += [term_condition(t, org_id, dialect, region=region, now=now) for t in query.terms]
    conditions += [name_contains(word) for word in query.name_words]
    rank = relevance(FULL_NAME, query.name_words) if query.name_words else None
    selective = any(isinstance(t, Email | Phone | ExactName) for t in query.terms)
    one_word = None
    if len(query.name_words) == 1 and not query.terms and not with_pii and not dialect.sqlite:
        one_word = OneWord(org_id, query.name_words[0], include_archived=include_archived)
    return CompiledSearch(conditions, rank, selective, query.name_words, one_word=one_word)


async def compile_for_org(
    conn: Executor, org_id: uuid.UUID, text: str | None, *, include_archived: bool = False, with_pii: bool = False
) -> CompiledSearch:
    """Parse and compile a search for an organization, reading its region only when a phone needs it."""
    parsed = parse_search(text)
    region = "US"
    if parsed.has_phone:
        stmt = select(ORGANIZATIONS.c.default_region).where(ORGANIZATIONS.c.id == org_id)
        region = (await conn.execute(stmt)).scalar_one()
    return compile_search(
        parsed, org_id, Dialect.of(conn), region=region, include_archived=include_archived, with_pii=with_pii
    )
