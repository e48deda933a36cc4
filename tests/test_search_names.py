"""Partial-name search through each organization's name parts (resolvers/search_names.py):
the parts follow every write and forget erased names; on PostgreSQL a one-word search's
first page read from them is exactly the whole ranking's first page, from the indexes
alone; and writers wait while an erasure looks at the parts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from database import Database
from engines import create_engine as create_async_engine
from models import Organization
from models.base import new_id, utcnow
from models.tables import NAME_PARTS, PERSONAS
from resolvers.organizations import create_organization
from resolvers.search import parse_search
from resolvers.search_names import NAME_PARTS_LOCK
from resolvers.search_pages import Carry, SearchPageRequest, _statement
from resolvers.search_sql import compile_search
from resolvers.search_terms import Dialect
from settings import Settings
from tests.conftest import GraphQLClient
from tests.factories import make_persona, own_postgres_database
from tests.search_cast import erase, names

# ------------------------------------------------------------ the parts follow the writes


async def parts(db: Database, org: Organization) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(NAME_PARTS.c.part).where(NAME_PARTS.c.org_id == org.id))).scalars())


async def test_parts_follow_new_names_and_forget_what_an_erasure_leaves_unused(
    db: Database, org: Organization, other_org: Organization, owner_client: GraphQLClient
) -> None:
    # Given two customers named Zora, one of them also known by another last name before
    await make_persona(db, org, first_name="Zora", last_name="Quell", email="zora.q@example.com")
    await make_persona(db, org, first_name="ZORA", last_name="Brand", phone="(415) 555-0177")
    await make_persona(db, other_org, first_name="Quell", last_name="Other", email="quell@example.com")
    assert await parts(db, org) == {"zora", "quell", "brand"}
    await make_persona(db, org, last_name="Quellmann", email="zora.q@example.com")
    assert await parts(db, org) == {"zora", "quell", "quellmann", "brand"}
    assert await names(owner_client, "quell") == ["Zora Quellmann"]

    # When the renamed one is erased
    await erase(owner_client, email="zora.q@example.com")

    # Then neither of her last names is kept; the name the other Zora shares is, and
    # the other organization's parts are untouched
    assert await parts(db, org) == {"zora", "brand"}
    assert await parts(db, other_org) == {"quell", "other"}
    assert await names(owner_client, "quell") == []
    # And a later customer with her name is found by it again
    await make_persona(db, org, first_name="Ann", last_name="Quell", email="ann.q@example.com")
    assert await parts(db, org) == {"zora", "brand", "ann", "quell"}
    assert await names(owner_client, "quel") == ["Ann Quell"]


# ------------------------------------------------------------ the first page from the parts


@pytest.fixture(scope="module")
def names_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of this module's own, migrated."""
    with own_postgres_database(postgres_url, "names") as url:
        yield url


@pytest.fixture(scope="module")
async def names_db(names_url: str) -> AsyncIterator[Database]:
    db = Database(create_async_engine(Settings(database_url=names_url)))
    yield db
    await db.dispose()


# Name fragments that hold one another, in every case, with spaces inside and around,
# LIKE's own characters, empty and missing.
FRAGMENTS = ["ann", "Anna", "joann", "jo ann", "ANN", " ann", "ann ", "an_n", "a%n", "lee", "Ann Lee", "", None]
WORDS = ["ann", "an", "n", "jo", "lee", "ann ", "an_", "a%", "_", "%", "nna", "x"]
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# first name, last name, state, minutes after T0
Person = tuple[str | None, str | None, str, int]
person = st.tuples(
    st.sampled_from(FRAGMENTS),
    st.sampled_from(FRAGMENTS),
    st.sampled_from(["listed", "archived", "merged", "erased"]),
    st.integers(min_value=0, max_value=3),  # minutes after T0: equal times are ordered by id
)


async def _new_org(db: Database, people: Sequence[Person]) -> uuid.UUID:
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug=f"o{uuid.uuid4().hex[:12]}", name="Names")
    now = utcnow()
    ids = [new_id() for _ in people]
    rows: list[dict[str, Any]] = []
    for n, ((first, last, state, minute), id_) in enumerate(zip(people, ids, strict=True)):
        rows.append(
            {
                "org_id": org.id,
                "id": id_,
                "number": n + 1,
                "first_name": first,
                "last_name": last,
                "email": f"p{n}@example.com",
                "source_kind": "POS",
                "created_at": T0 + dt.timedelta(minutes=minute),
                "updated_at": now,
                "archived_at": now if state == "archived" else None,
                "erased_at": now if state == "erased" else None,
                "merged_into_id": ids[0] if state == "merged" and n > 0 else None,
            }
        )
    async with db.session() as session, session.begin():
        # Each persona by its own statement, as the write paths add them (the triggers see each).
        for row in rows:
            await session.execute(insert(PERSONAS).values({**row, "merged_into_id": None}))
        for row in rows:
            if row["merged_into_id"] is not None:
                await session.execute(
                    PERSONAS.update()
                    .where(PERSONAS.c.org_id == org.id, PERSONAS.c.id == row["id"])
                    .values(merged_into_id=row["merged_into_id"])
                )
    return org.id


@settings(max_examples=120, deadline=None)
@given(
    people=st.lists(person, min_size=1, max_size=14),
    word=st.sampled_from(WORDS),
    size=st.integers(min_value=1, max_value=4),
    archived=st.booleans(),
)
async def test_a_one_word_first_page_is_the_whole_rankings_first_page(
    names_db: Database, people: list[Person], word: str, size: int, archived: bool
) -> None:
    # Given personas whose names hold the word in every way (or not at all), in every state
    org_id = await _new_org(names_db, people)
    async with names_db.read() as conn:
        search = compile_search(parse_search(word), org_id, Dialect(sqlite=False), include_archived=archived)
        assert search.one_word is not None
        whole = dataclasses.replace(search, one_word=None)
        request = SearchPageRequest.from_args(first=size)
        # When the first page is read from the name parts, and ranked the whole way
        pages = []
        for compiled in (search, whole):
            carry = Carry(points=True, tags=True)
            stmt, params = _statement(compiled, request, with_total=True, carry=carry, sqlite=False)
            pages.append([(r.id, r.search_rank, r.search_total) for r in (await conn.execute(stmt, params)).all()])
    # Then both give the same personas, ranks, order and count
    assert pages[0] == pages[1]


async def test_a_one_word_first_page_reads_no_persona_row(names_db: Database) -> None:
    # Given an organization of a few thousand personas, a few of them named with the word (one
    # the other tests' names never hold), its statistics fresh
    first = {0: "Zed", 1: "Zeda", 2: "Ozed"}
    people = [(first.get(n % 100, f"Bo{n % 200}"), f"Lee{n % 50}", "listed", n % 4) for n in range(3000)]
    org_id = await _new_org(names_db, people)
    async with names_db.engine.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text("VACUUM ANALYZE personas, persona_name_parts")
        )
    async with names_db.read() as conn:
        search = compile_search(parse_search("zed"), org_id, Dialect(sqlite=False))
        stmt, params = _statement(
            search, SearchPageRequest.from_args(first=20), with_total=True, carry=Carry(), sqlite=False
        )
        sql = str(stmt.params(params).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        # (At this size the planner may still prefer the heap; at a million personas it does not.)
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        await conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        await conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        plan = [r[0] for r in (await conn.exec_driver_sql("EXPLAIN " + sql)).all()]
    # Then the matches and their count come from the name indexes alone: persona rows are read
    # only for the page and for the personas named exactly the word
    scans = [line.split("->")[-1].strip() for line in plan if " on personas " in line]
    for index in ("ix_personas_first_name", "ix_personas_last_name"):
        assert sum(f"Index Only Scan Backward using {index}" in s for s in scans) == 1, plan
        assert sum(f"Index Only Scan using {index}" in s for s in scans) == 1, plan
    whole_rows = [s for s in scans if not s.startswith("Index Only Scan")]
    assert len(whole_rows) == 2, plan
    assert "Index Scan using personas_pkey" in whole_rows[-1], plan
    assert any("Index Scan using ix_personas_full_name" in s for s in whole_rows), plan


# ------------------------------------------------------------ writers wait for an erasure's look


async def test_persona_writers_wait_while_an_erasure_holds_the_parts(names_db: Database, names_url: str) -> None:
    org_id = await _new_org(names_db, [("Ann", "Lee", "listed", 0)])
    url = make_url(names_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as eraser, psycopg.connect(url) as writer:
        # Given an erasure holding the name parts' lock
        eraser.execute("SELECT pg_advisory_xact_lock(%s)", (NAME_PARTS_LOCK,))
        # When a persona is written meanwhile, then the write waits for it
        writer.execute("SET lock_timeout = '300ms'")
        rename = "UPDATE personas SET last_name = 'Leeward' WHERE org_id = %s"
        with pytest.raises(psycopg.errors.LockNotAvailable):
            writer.execute(rename, (org_id,))
        writer.rollback()
        # And goes through once the erasure is over, its new name among the parts
        eraser.commit()
        writer.execute(rename, (org_id,))
        writer.commit()
        found = writer.execute("SELECT part FROM persona_name_parts WHERE org_id = %s ORDER BY part", (org_id,))
        assert [r[0] for r in found] == ["ann", "lee", "leeward"]
