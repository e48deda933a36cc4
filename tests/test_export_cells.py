"""The CSV export's tags and consent cells as the triggers of migration 0007 keep them
(models.PersonaExportCells): after any sequence of writes, in any statement shape, they
say what the persona's tag and consent rows say, on both databases; the export follows
the card's mutations, a merge and its undoing, and an erasure; and on PostgreSQL two
writers of one persona at once are both counted."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from database import Database
from engines import create_engine as create_async_engine
from models import Organization
from models.base import new_id, utcnow
from models.enums import Channel
from models.export import consent_column
from models.tables import CONSENTS, EXPORT_CELLS, PERSONAS, TAGS
from resolvers.ingest import ConsentData
from resolvers.organizations import create_organization
from settings import Settings
from tests.conftest import GraphQLClient
from tests.factories import make_persona, own_postgres_database
from tests.search_cast import erase

CONSENT_COLUMNS = [consent_column(channel) for channel in Channel]
# Tags whose code point order differs from a case-blind or accent-aware one.
TAGS_USED = ["VIP", "vip", "b", "A", "éclair", "-x"]
CHANNELS = ["LOYALTY", "TEXT", "AGE_GATE"]
STATUSES = ["OPTED_IN", "OPTED_OUT", "UNKNOWN"]
PERSONAS_USED = 3


async def cells(conn: AsyncConnection, org_id: uuid.UUID) -> dict[uuid.UUID, tuple[Any, ...]]:
    """Each persona's cells as kept, without the personas whose cells are all empty."""
    c = EXPORT_CELLS.c
    rows = await conn.execute(select(c.persona_id, c.tags, *(c[n] for n in CONSENT_COLUMNS)).where(c.org_id == org_id))
    return {r[0]: tuple(r[1:]) for r in rows if any(v is not None for v in r[1:])}


async def recomputed(conn: AsyncConnection, org_id: uuid.UUID) -> dict[uuid.UUID, tuple[Any, ...]]:
    """Each persona's cells from its tag and consent rows, in Python."""
    tags: dict[uuid.UUID, list[str]] = {}
    for persona_id, tag in await conn.execute(select(TAGS.c.persona_id, TAGS.c.tag).where(TAGS.c.org_id == org_id)):
        tags.setdefault(persona_id, []).append(tag)
    statuses: dict[uuid.UUID, dict[str, str]] = {}
    c = CONSENTS.c
    for persona_id, channel, status in await conn.execute(
        select(c.persona_id, c.channel, c.status).where(c.org_id == org_id)
    ):
        statuses.setdefault(persona_id, {})[channel] = status
    return {
        persona_id: (
            "; ".join(sorted(tags[persona_id])) if persona_id in tags else None,
            *(statuses.get(persona_id, {}).get(channel.value) for channel in Channel),
        )
        for persona_id in tags.keys() | statuses.keys()
    }


# ------------------------------------------------------------ any writes, any statement shape

# (kind, persona, other persona, tags, channel, status)
Write = tuple[str, int, int, list[str], str, str]
write = st.tuples(
    st.sampled_from(["tag", "tag one by one", "untag", "consent", "drop consent", "move", "clear"]),
    st.integers(0, PERSONAS_USED - 1),
    st.integers(0, PERSONAS_USED - 1),
    st.lists(st.sampled_from(TAGS_USED), min_size=1, max_size=4, unique=True),
    st.sampled_from(CHANNELS),
    st.sampled_from(STATUSES),
)


async def _apply(conn: AsyncConnection, org_id: uuid.UUID, ids: list[uuid.UUID], w: Write) -> None:
    kind, n, m, tags, channel, status = w
    persona, other = ids[n], ids[m]
    now = utcnow()
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    mine = and_(TAGS.c.org_id == org_id, TAGS.c.persona_id == persona)
    consent = and_(CONSENTS.c.org_id == org_id, CONSENTS.c.persona_id == persona)
    if kind == "tag":  # one statement, several rows
        rows = [{"org_id": org_id, "persona_id": persona, "tag": t, "created_at": now} for t in tags]
        await conn.execute(dialect.insert(TAGS).values(rows).on_conflict_do_nothing())
    elif kind == "tag one by one":  # one statement a row (executemany)
        held = set((await conn.execute(select(TAGS.c.tag).where(mine))).scalars())
        rows = [{"org_id": org_id, "persona_id": persona, "tag": t, "created_at": now} for t in tags if t not in held]
        if rows:
            await conn.execute(insert(TAGS), rows)
    elif kind == "untag":
        await conn.execute(delete(TAGS).where(mine, TAGS.c.tag.in_(tags)))
    elif kind == "consent":
        row = {"org_id": org_id, "persona_id": persona, "channel": channel, "status": status}
        stmt = dialect.insert(CONSENTS).values(**row, source="IMPORT", updated_at=now)
        await conn.execute(stmt.on_conflict_do_update(index_elements=CONSENTS.primary_key.columns, set_=row))
    elif kind == "drop consent":
        await conn.execute(delete(CONSENTS).where(consent, CONSENTS.c.channel == channel))
    elif kind == "move" and persona != other:  # as a merge moves them: what the other has stays its own
        theirs = select(TAGS.c.tag).where(TAGS.c.org_id == org_id, TAGS.c.persona_id == other)
        await conn.execute(update(TAGS).where(mine, TAGS.c.tag.not_in(theirs)).values(persona_id=other))
        c = CONSENTS.c
        channels = select(c.channel).where(c.org_id == org_id, c.persona_id == other)
        await conn.execute(update(CONSENTS).where(consent, c.channel.not_in(channels)).values(persona_id=other))
        await conn.execute(delete(TAGS).where(mine))
        await conn.execute(delete(CONSENTS).where(consent))
    elif kind == "clear":  # as an erasure does
        await conn.execute(delete(TAGS).where(mine))
        await conn.execute(delete(CONSENTS).where(consent))


@settings(max_examples=60, deadline=None)
@given(
    transactions=st.lists(st.lists(write, min_size=1, max_size=4), min_size=1, max_size=5),
)
async def test_the_cells_say_what_the_tag_and_consent_rows_say_after_any_writes(
    session_db: Database, transactions: list[list[Write]]
) -> None:
    # Given an organization of its own with a few personas
    async with session_db.session() as session, session.begin():
        org = await create_organization(session, slug=f"o{uuid.uuid4().hex[:12]}", name="Cells")
    ids = [new_id() for _ in range(PERSONAS_USED)]
    async with session_db.engine.begin() as conn:
        for n, id_ in enumerate(ids):
            now = utcnow()
            row = {"org_id": org.id, "id": id_, "number": n + 1, "source_kind": "POS"}
            await conn.execute(insert(PERSONAS).values(**row, created_at=now, updated_at=now))
    # When tags and consents are added, removed, changed and moved between them, several writes a transaction
    for writes in transactions:
        async with session_db.engine.begin() as conn:
            for w in writes:
                await _apply(conn, org.id, ids, w)
            # Then within the transaction and after it, every persona's cells are what its rows say
            assert await cells(conn, org.id) == await recomputed(conn, org.id)
    async with session_db.engine.connect() as conn:
        assert await cells(conn, org.id) == await recomputed(conn, org.id)


# ------------------------------------------------------------ through the API

SET_TAGS = """
mutation ($input: SetTagsInput!) { setTags(input: $input) { userErrors { code } } }
"""
SET_OPT_IN = """
mutation ($input: SetOptInInput!) { setOptIn(input: $input) { userErrors { code } } }
"""
MERGE = """
mutation ($input: MergePersonasInput!) { mergePersonas(input: $input) { merge { id } userErrors { code } } }
"""
UNDO = """
mutation ($input: UndoMergeInput!) { undoMerge(input: $input) { userErrors { code } } }
"""


async def exported(client: GraphQLClient, query: str) -> list[tuple[str, ...]]:
    """(first name, tags, TEXT, EMAIL) of each exported persona the query finds."""
    response = await client.http.get("/export/personas.csv", params={"query": query})
    assert response.status_code == 200, response.text
    rows = csv.DictReader(io.StringIO(response.content.decode()))
    return [(r["first_name"], r["tags"], r["consent_text"], r["consent_email"]) for r in rows]


async def test_the_export_follows_the_mutations_a_merge_its_undoing_and_an_erasure(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given two records of one customer, each with its tags and consents
    ann = await make_persona(
        db,
        org,
        first_name="Ann",
        email="ann@example.com",
        tags=["vip"],
        consents=[ConsentData("TEXT", "OPTED_IN", "CUSTOMER")],
    )
    dup = await make_persona(
        db,
        org,
        first_name="Annie",
        phone="(415) 555-0111",
        tags=["edibles", "VIP"],
        consents=[ConsentData("TEXT", "OPTED_OUT", "CUSTOMER"), ConsentData("EMAIL", "OPTED_IN", "CUSTOMER")],
    )
    assert await exported(owner_client, "Ann") == [
        ("Annie", "VIP; edibles", "OPTED_OUT", "OPTED_IN"),
        ("Ann", "vip", "OPTED_IN", "UNKNOWN"),
    ]

    # When her tags and consents are changed on the card
    data = await owner_client.data(SET_TAGS, {"input": {"personaId": ann.gid, "add": ["b", "A"], "remove": ["vip"]}})
    assert data["setTags"]["userErrors"] == []
    data = await owner_client.data(
        SET_OPT_IN, {"input": {"personaId": ann.gid, "channel": "EMAIL", "status": "OPTED_OUT"}}
    )
    assert data["setOptIn"]["userErrors"] == []
    # Then the export shows them
    assert await exported(owner_client, "Ann ") == [
        ("Annie", "VIP; edibles", "OPTED_OUT", "OPTED_IN"),
        ("Ann", "A; b", "OPTED_IN", "OPTED_OUT"),
    ]

    # When the duplicate is merged into her: its tags join hers, the most restrictive consent wins
    merged = await owner_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": dup.gid}})
    assert merged["mergePersonas"]["userErrors"] == []
    assert await exported(owner_client, "Ann") == [("Ann", "A; VIP; b; edibles", "OPTED_OUT", "OPTED_OUT")]

    # When the merge is undone, each has its own again
    undo = await owner_client.data(UNDO, {"input": {"mergeId": merged["mergePersonas"]["merge"]["id"]}})
    assert undo["undoMerge"]["userErrors"] == []
    assert await exported(owner_client, "Ann") == [
        ("Annie", "VIP; edibles", "OPTED_OUT", "OPTED_IN"),
        ("Ann", "A; b", "OPTED_IN", "OPTED_OUT"),
    ]

    # When she is erased, her tags are gone from the cells (her consents stay, as their rows do)
    await erase(owner_client, email="ann@example.com")
    async with db.read() as conn:
        kept = await cells(conn, org.id)
        assert await recomputed(conn, org.id) == kept
    assert kept[ann.id][0] is None
    assert await exported(owner_client, "Ann") == [("Annie", "VIP; edibles", "OPTED_OUT", "OPTED_IN")]


# ------------------------------------------------------------ two writers at once (PostgreSQL)


@pytest.fixture(scope="module")
def cells_url(postgres_url: str) -> Iterator[str]:
    with own_postgres_database(postgres_url, "cells") as url:
        yield url


ADD = "INSERT INTO persona_tags (org_id, persona_id, tag, created_at) VALUES (%s, %s, %s, now())"
REMOVE = "DELETE FROM persona_tags WHERE org_id = %s AND persona_id = %s AND tag = %s"


@pytest.mark.parametrize(
    ("had", "second", "tags"),
    [([], (ADD, "two"), "one; two"), (["old"], (ADD, "two"), "old; one; two"), (["old"], (REMOVE, "old"), "one")],
    ids=["adds-to-a-persona-with-no-cells-yet", "adds", "removes"],
)
async def test_two_writers_of_one_persona_at_once_are_both_counted(
    cells_url: str, had: list[str], second: tuple[str, str], tags: str
) -> None:
    db = Database(create_async_engine(Settings(database_url=cells_url)))
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug=f"o{uuid.uuid4().hex[:12]}", name="Cells")
    person = await make_persona(db, org, email="ann@example.com", tags=had)
    await db.dispose()
    url = make_url(cells_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as one, psycopg.connect(url) as two:
        # Given a writer that has added a tag to a persona and not committed yet
        one.execute(ADD, (org.id, person.id, "one"))
        # When a second writer adds or removes another tag of the same persona meanwhile
        done = threading.Event()
        statement, tag = second

        def write() -> None:
            two.execute(statement, (org.id, person.id, tag))
            two.commit()
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        # Then it waits for the first to commit
        assert not done.wait(0.3)
        one.commit()
        writer.join(timeout=10)
        assert done.is_set()
        # And the cells hold both writers' changes
        found = one.execute(
            "SELECT tags FROM persona_export_cells WHERE org_id = %s AND persona_id = %s", (org.id, person.id)
        ).fetchone()
    assert found == (tags,)
