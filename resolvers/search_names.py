"""A search of one name word, answered from the organization's name parts (PostgreSQL).

A word holds no space, so it is in a persona's whole name exactly when it is in
the first name or in the last name: the parts holding it (models/search.py
NamePart, found by their trigram index) name every persona that matches, and
the first- and last-name indexes (migration 0006) give those personas, newest
first for each part, with what the Personas page's rules and the ranking read,
without a persona row.

The ranking (search_terms.relevance: 0 the exact name, 1 the word whole, 2 a
word starting with it, 3 the rest) of such a persona is the best its first and
last name give, each of which depends on the part alone: 1, 2 or 3 as the part
holds the word whole, at a word's start or within. Only 0, the whole name equal
to the word, reads both names; the whole-name index finds those personas. So
the first page is among, for each part, its newest personas (as many as the
page, through each name index), and the personas named exactly the word: a
persona of the page is on the list of the part that ranks it, and the ones
before it there rank as well and are newer, so are before it on the page too.
Each candidate takes the best rank it came with, and the page is their first
rows: the same page, ranks and order as the whole search ranked (checked by
tests/test_search_names.py), in a few hundred index rows instead of all matches.

The count is exact: the personas whose first name is one of the parts, and
those whose last name is one and first name is not, two index-only scans.

Later pages (their cursor may fall between two ranks of one persona), backward
pages and searches of several words go the whole way (search_pages.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    String,
    Subquery,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import NAME_PARTS, PERSONAS
from resolvers.persona import listed_personas
from resolvers.search_terms import (
    FULL_NAME,
    Dialect,
    holds,
    spaced,
    spaced_before,
    starting,
    whole,
    within,
)

P = PERSONAS.c
# Every statement writing personas takes this advisory lock shared (a trigger of migration 0006,
# which repeats the number); an erasure takes it exclusively before forgetting parts.
NAME_PARTS_LOCK = 0x4E414D45


# first_page's statement is built once per shape and binds the search's values (building it
# took longer than running it: ~6 ms of Python against ~3 ms of SQL for a common word).
_ORG = bindparam("name_org", type_=P.org_id.type)
_WORD = bindparam("name_word", type_=String())


@dataclass(frozen=True)
class OneWord:
    """A search of one bare name word, on top of the Personas page's rules and nothing else."""

    org_id: uuid.UUID
    word: str
    include_archived: bool

    def params(self) -> dict[str, Any]:
        """The values first_page's statement binds."""
        return {
            _ORG.key: self.org_id,
            _WORD.key: self.word,
            "name_within": within(self.word),
            "name_whole": whole(self.word),
            "name_starting": starting(self.word),
        }


def _pattern(name: str) -> BindParameter[str]:
    return bindparam(name, type_=String())


def _parts() -> CTE:
    """The organization's name parts holding the word, each with the rank it gives."""
    part = NAME_PARTS.c.part
    rank = case(
        (holds(spaced(part), _pattern("name_whole")), 1),
        (holds(spaced_before(part), _pattern("name_starting")), 2),
        else_=3,
    )
    return (
        select(part, rank.label("rank"))
        .where(NAME_PARTS.c.org_id == _ORG, holds(part, _pattern("name_within")))
        .cte("search_parts")
    )


def _newest(conditions: Sequence[ColumnElement[bool]], rank: Any, size: int) -> Any:
    """The `size` newest personas meeting the conditions, with their rank."""
    return (
        select(P.org_id, P.id, P.created_at, rank.label("rank"))
        .where(*conditions)
        .order_by(P.created_at.desc(), P.id.desc())
        .limit(size)
    )


def first_page(include_archived: bool, size: int) -> tuple[Subquery, ColumnElement[int]]:
    """The first `size` matches, best rank then newest first (org_id, id, created_at, rank),
    and the count of every match; the values bound are OneWord.params()."""
    parts = _parts()
    listed = list(listed_personas(_ORG, include_archived=include_archived))
    candidates = []
    for name in (P.first_name, P.last_name):
        newest = _newest([*listed, func.lower(name) == parts.c.part], parts.c.rank, size).lateral()
        candidates.append(select(newest).select_from(parts).join(newest, true()))
    exact = func.trim(FULL_NAME) == func.lower(_WORD)
    candidates.append(_newest([*listed, exact], literal(0), size))
    found = union_all(*candidates).subquery("search_candidates").c
    best = func.min(found.rank)
    page = (
        select(found.org_id, found.id, found.created_at, best.label("rank"))
        .group_by(found.org_id, found.id, found.created_at)
        .order_by(best, found.created_at.desc(), found.id.desc())
        .limit(size)
        .subquery("search_page")
    )
    return page, _count(parts, listed)


def _count(parts: CTE, listed: list[ColumnElement[bool]]) -> ColumnElement[int]:
    """The personas whose first name is one of the parts, and those whose last name is one and
    first name is not: for each part, an index range of each name index."""
    first, last = func.lower(P.first_name), func.lower(P.last_name)
    all_parts = func.array(select(parts.c.part).scalar_subquery())
    by_first = select(func.count()).select_from(parts).join(PERSONAS, and_(*listed, first == parts.c.part))
    by_last = (
        select(func.count())
        .select_from(parts)
        .join(PERSONAS, and_(*listed, last == parts.c.part, (first == any_(all_parts)).is_not(True)))
    )
    return by_first.scalar_subquery() + by_last.scalar_subquery()


# ------------------------------------------------------------ erasure


async def lock_name_parts(session: AsyncSession) -> None:
    """Wait for every transaction writing personas to end, and hold off new ones (PostgreSQL)."""
    if not Dialect.of(session).sqlite:
        await session.execute(select(func.pg_advisory_xact_lock(NAME_PARTS_LOCK)))


async def forget_unused_name_parts(session: AsyncSession, org_id: uuid.UUID) -> None:
    """Delete the organization's parts that no persona has any more: after an erasure, under
    lock_name_parts (no writer is adding a persona with one of them meanwhile). Every one, not
    only the erased names: an erased persona may have had another name before."""
    table = NAME_PARTS.c
    names = (P.first_name, P.last_name)
    unused: list[ColumnElement[bool]]
    if Dialect.of(session).sqlite:
        # No index on lower(name) there: one pass over the personas rather than a scan per part.
        used = union_all(*(select(func.lower(n)).where(P.org_id == org_id, n.is_not(None)) for n in names))
        unused = [table.part.not_in(used)]
    else:
        unused = [~select(text("1")).where(P.org_id == org_id, func.lower(n) == table.part).exists() for n in names]
    await session.execute(NAME_PARTS.delete().where(table.org_id == org_id, *unused))
