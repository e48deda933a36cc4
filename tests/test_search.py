"""personas(query:): every search form, every smart condition alone and
combined, relevance then recency, the hidden personas, bad queries, the
smart condition list, and the indexes exact search relies on."""

from __future__ import annotations

import datetime as dt
import string
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, text
from sqlmodel import SQLModel

from database import Database
from models import Organization
from models.base import new_id, utcnow
from models.tables import PERSONAS
from resolvers.search import SearchSyntaxError, parse_search
from resolvers.search_sql import compile_search
from resolvers.search_terms import Dialect
from tests.conftest import GraphQLClient
from tests.factories import make_persona
from tests.search_cast import SEARCH, Cast, archive, erase, make_cast, merged_pair, names

ANN, ANNABEL, JOANN, BOB = "Ann Lee", "Annabel Leeds", "Joann Kaleel", "Bob Stone"
CONDITIONS = """
{ smartSearchConditions { label condition description } }
"""


@pytest.fixture
async def cast(db: Database, org: Organization) -> Cast:
    return await make_cast(db, org)


# ------------------------------------------------------------ search forms


PHONE_FORMATS = [
    "415-555-0101",
    "(415) 555-0101",
    "415.555.0101",
    "4155550101",
    "+1 415 555 0101",
    "+14155550101",
    "1-415-555-0101",
    "1 (415) 555-0101",
    "+1 (415) 555-0101",
]


@pytest.mark.usefixtures("cast")
async def test_an_email_finds_exactly_that_persona_ignoring_case(staff_client: GraphQLClient) -> None:
    for typed in ("ann@example.com", "ANN@EXAMPLE.COM", "  Ann@Example.com  "):
        assert await names(staff_client, typed) == [ANN], typed
    assert await names(staff_client, "nn@example.com") == []
    assert await names(staff_client, "ann@example.co") == []


@pytest.mark.usefixtures("cast")
async def test_a_phone_in_any_common_format_finds_that_persona(staff_client: GraphQLClient) -> None:
    for typed in PHONE_FORMATS:
        assert await names(staff_client, typed) == [ANN], typed


@pytest.mark.usefixtures("cast")
async def test_a_phone_nobody_has_finds_nobody(staff_client: GraphQLClient) -> None:
    assert await names(staff_client, "(415) 555-0199") == []


@pytest.mark.usefixtures("cast")
async def test_a_quoted_name_matches_exactly_and_bare_words_match_within_names(staff_client: GraphQLClient) -> None:
    # Given Ann Lee, Annabel Leeds and Joann Kaleel
    # Then "Ann Lee" in quotes is that name only, in any case
    assert await names(staff_client, '"Ann Lee"') == [ANN]
    assert await names(staff_client, '"ann   LEE"') == [ANN]
    # And the bare words find every name containing both: the exact name first,
    # then names holding the whole words, then names with words starting with
    # them, then names merely containing them.
    assert await names(staff_client, "Ann Lee") == [ANN, ANNABEL, JOANN]
    assert await names(staff_client, "lee ann") == [ANN, ANNABEL, JOANN]
    assert await names(staff_client, "ann") == [ANN, ANNABEL, JOANN]
    assert await names(staff_client, "annab") == [ANNABEL]
    # A quoted single word is a whole first or last name.
    assert await names(staff_client, '"Lee"') == [ANN]
    assert await names(staff_client, '"Leeds"') == [ANNABEL]
    assert await names(staff_client, '"Anna"') == []


async def test_equally_relevant_results_come_newest_first(
    db: Database, org: Organization, staff_client: GraphQLClient
) -> None:
    for first in ("Kim", "Kimberly", "Kimi"):
        await make_persona(db, org, first_name=first, last_name="Park", email=f"{first.lower()}@example.com")
    # "Kim Park" is exact; "kim" starts the other first names; "park" is a whole word of each.
    assert await names(staff_client, "kim park") == ["Kim Park", "Kimi Park", "Kimberly Park"]
    assert await names(staff_client, "park") == ["Kimi Park", "Kimberly Park", "Kim Park"]


@pytest.mark.usefixtures("cast")
async def test_no_query_is_the_whole_personas_page_newest_first(staff_client: GraphQLClient) -> None:
    for query in (None, "", "   "):
        assert await names(staff_client, query) == [BOB, JOANN, ANNABEL, ANN]


@pytest.mark.usefixtures("cast")
async def test_relevance_pages_forward_and_back_without_gaps(staff_client: GraphQLClient) -> None:
    # Given three names containing "lee": as a word, starting a word, within a word
    seen: list[str] = []
    cursors: list[str] = []
    after = None
    while True:
        data = (await staff_client.data(SEARCH, {"q": "lee", "first": 1, "after": after}))["personas"]
        assert data["totalCount"] == 3
        seen += [e["node"]["fullName"] for e in data["edges"]]
        cursors += [e["cursor"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert seen == [ANN, ANNABEL, JOANN]
    # And back from the last one, one at a time
    back = [seen[-1]]
    before = cursors[-1]
    while True:
        data = (await staff_client.data(SEARCH, {"q": "lee", "last": 1, "before": before}))["personas"]
        back = [n["fullName"] for n in data["nodes"]] + back
        if not data["pageInfo"]["hasPreviousPage"]:
            break
        before = data["pageInfo"]["startCursor"]
    assert back == seen


PAGE_WITHOUT_COUNT = """
query ($q: String, $first: Int, $after: String) {
  personas(query: $q, first: $first, after: $after) { edges { cursor node { fullName } } }
}
"""


PAGE_SHOWS = """
query ($q: String) {
  personas(query: $q, first: 50) {
    nodes { id rewardPoints tags }
    edges { node { ...Shown } }
  }
}
fragment Shown on Persona { id rewardPoints tags }
"""
CARD_SHOWS = "query ($id: ID!) { persona(id: $id) { rewardPoints tags } }"


async def test_the_page_shows_the_points_and_tags_each_card_shows(
    db: Database, org: Organization, staff_client: GraphQLClient
) -> None:
    # Given personas with points, with tags in any order and case, without tags, and one without a rollup
    made = [
        await make_persona(
            db, org, source_id=f"kim-{n}", first_name=first, last_name="Park", email=f"{first.lower()}@example.com",
            tags=tags, legacy_points=points,
        )
        for n, (first, tags, points) in enumerate(
            (("Kim", ["vip", "Beta", "alpha", "Zed"], 120), ("Kimi", [], 30), ("Kimberly", ["b", "a"], None))
        )
    ]  # fmt: skip
    rollups = SQLModel.metadata.tables["persona_rollups"]
    async with db.session() as session, session.begin():
        await session.execute(delete(rollups).where(rollups.c.org_id == org.id, rollups.c.persona_id == made[-1].id))
    for query in (None, "kim park", "park", '"Kim Park"', "kimi@example.com"):
        # When the Personas page lists them (as nodes and through edges and a fragment)
        page = (await staff_client.data(PAGE_SHOWS, {"q": query}))["personas"]
        shown = page["nodes"] + [e["node"] for e in page["edges"]]
        assert shown, query
        for node in shown:
            # Then each shows the points and tags of its card
            card = (await staff_client.data(CARD_SHOWS, {"id": node["id"]}))["persona"]
            assert {"rewardPoints": node["rewardPoints"], "tags": node["tags"]} == card, (query, node)
    card = (await staff_client.data(CARD_SHOWS, {"id": made[0].gid}))["persona"]
    assert card == {"rewardPoints": 120, "tags": sorted(["vip", "Beta", "alpha", "Zed"])}
    assert (await staff_client.data(CARD_SHOWS, {"id": made[-1].gid}))["persona"]["rewardPoints"] == 0


@pytest.mark.usefixtures("cast")
async def test_total_count_is_the_whole_search_on_every_page(staff_client: GraphQLClient) -> None:
    # Given three names containing "lee", and the cursor of the last of them
    last = (await staff_client.data(PAGE_WITHOUT_COUNT, {"q": "lee", "first": 3}))["personas"]["edges"][-1]
    assert last["node"]["fullName"] == JOANN
    for variables in (
        # When a ranked search is paged: forward, past the last match, and backward
        {"q": "lee", "first": 2},
        {"q": "lee", "first": 1, "after": last["cursor"]},
        {"q": "lee", "last": 1, "before": last["cursor"]},
        {"q": "lee", "last": 5},
    ):
        # Then totalCount counts every match, whatever the page holds
        assert (await staff_client.data(SEARCH, variables))["personas"]["totalCount"] == 3, variables
    # And exact searches count their matches, none included
    for query, total in (('"Ann Lee"', 1), ("ann@example.com", 1), ("(415) 555-0101", 1), ('"Nobody Here"', 0)):
        data = (await staff_client.data(SEARCH, {"q": query}))["personas"]
        assert (data["totalCount"], len(data["nodes"])) == (total, total), query
    ann = (await staff_client.data(SEARCH, {"q": '"Ann Lee"'}))["personas"]["pageInfo"]["endCursor"]
    past = (await staff_client.data(SEARCH, {"q": '"Ann Lee"', "after": ann}))["personas"]
    assert (past["totalCount"], past["nodes"]) == (1, [])


@pytest.mark.usefixtures("cast")
async def test_another_organizations_personas_are_never_found(
    db: Database, other_org: Organization, client_for: Any
) -> None:
    await make_persona(db, other_org, first_name="Ann", last_name="Lee", email="ann@example.com")
    rival = await client_for(organization=other_org)
    assert await names(rival, "ann@example.com") == [ANN]
    assert await names(rival, "415-555-0101") == []
    assert await names(rival, "Joann") == []


@pytest.mark.usefixtures("cast")
async def test_phone_and_email_searches_one_after_another_each_find_their_own(
    db: Database, other_org: Organization, staff_client: GraphQLClient, client_for: Any
) -> None:
    # Given Ann, Joann and Bob here, and another organization's persona on Ann's phone
    await make_persona(db, other_org, first_name="Ann", last_name="Elsewhere", phone="415-555-0101")
    rival = await client_for(organization=other_org)
    # When exact phone and email searches (one statement per kind, built once) run in turn
    # Then each binds its own value and organization
    for client, typed, found in [
        (staff_client, "415-555-0101", [ANN]),
        (rival, "415-555-0101", ["Ann Elsewhere"]),
        (staff_client, "415-555-0103", [JOANN]),
        (rival, "415-555-0103", []),
        (staff_client, "bob@example.com", [BOB]),
        (staff_client, "annabel@example.com", [ANNABEL]),
        (rival, "annabel@example.com", []),
        (staff_client, "415-555-0101", [ANN]),
    ]:
        assert await names(client, typed) == found, typed
        assert await names(client, typed, first=1) == found[:1], typed
    # And the same search with another condition, or archived personas asked for, is its own
    assert await names(staff_client, "415-555-0104 has:email") == [BOB]
    assert await names(staff_client, "bob@example.com is:archived") == []


# -------------------------------------------------------- smart conditions

ALONE = [
    ("has:mobile_phone", [BOB, JOANN, ANN]),
    ("has:email", [BOB, ANNABEL, ANN]),
    ("is:loyalty_member", [BOB, JOANN, ANN]),
    ("is:archived", []),
    ("opted_in:TEXT", [ANN]),
    ("opted_in:email", []),
    ("opted_out:EMAIL", [ANNABEL]),
    ("opted_out:text", [JOANN]),
    ("source:loyalty", [JOANN]),
    ("source:raw_file", [ANNABEL]),
    ("source:test-pos", [BOB, ANN]),
    ("source:TEST-POS", [BOB, ANN]),
    ("source:other-pos", []),
    ("tag:VIP", [ANN]),
    ("tag:vip", [ANN]),
    ('tag:"big spender"', [ANNABEL]),
    ("attr:tier=gold", [ANN]),
    ("attr:TIER=GOLD", [ANN]),
    ('attr:tier="gold plus"', [ANNABEL]),
    ('store:"Main Street"', [ANN]),
    ("store:downtown", [BOB]),
    ("store:Uptown", []),
    ("points>=150", [BOB]),
    ("points>0", [BOB, ANN]),
    ("points=20", [ANN]),
    ("points<=20", [JOANN, ANNABEL, ANN]),
    ("points<20", [JOANN, ANNABEL]),
    ("spent>100", [BOB]),
    ("spent>=22", [BOB, ANN]),
    ("spent=$22.00", [ANN]),
    ("spent<22.01", [JOANN, ANNABEL, ANN]),
    ("orders=3", [BOB]),
    ("orders>=1", [BOB, ANN]),
    ("orders<1", [JOANN, ANNABEL]),
    ("last_seen<30", [BOB]),
    ("last_seen<=9", []),
    ("last_seen=10", [BOB]),
    ("last_seen>90", [ANN]),
    ("last_seen>=100", [ANN]),
    ("last_seen>100", []),
    ("signed_up>=2025-01-01", [JOANN]),
    ("signed_up<2024-03-10", [BOB]),
    ("signed_up=2024-03-10", [ANN]),
    ("signed_up<=2024-03-10", [BOB, ANN]),
    ("signed_up>2024-03-10", [JOANN]),
    ("points >= 150", [BOB]),
    ("points:150", [BOB]),
    ("points:>=150", [BOB]),
]


@pytest.mark.usefixtures("cast")
async def test_each_smart_condition_alone(staff_client: GraphQLClient) -> None:
    for query, expected in ALONE:
        data = (await staff_client.data(SEARCH, {"q": query}))["personas"]
        assert [n["fullName"] for n in data["nodes"]] == expected, query
        assert data["totalCount"] == len(expected), query


COMBINED = [
    ("has:email is:loyalty_member", [BOB, ANN]),
    ("ann lee has:mobile_phone", [ANN, JOANN]),
    ("is:loyalty_member points>=100 store:Downtown", [BOB]),
    ("source:test-pos tag:VIP opted_in:TEXT attr:tier=gold", [ANN]),
    ("ann@example.com has:mobile_phone", [ANN]),
    ("annabel@example.com has:mobile_phone", []),
    ("415-555-0104 orders=3 last_seen<30", [BOB]),
    ('"Joann Kaleel" signed_up>=2025-01-01 opted_out:TEXT', [JOANN]),
    ('"Joann Kaleel" is:archived', []),
    ("has:mobile_phone has:email spent>100 last_seen>90", []),
]


@pytest.mark.usefixtures("cast")
async def test_smart_conditions_combine_with_and(staff_client: GraphQLClient) -> None:
    for query, expected in COMBINED:
        assert await names(staff_client, query) == expected, query


async def test_every_listed_smart_condition_parses_and_runs(
    cast: Cast, staff_client: GraphQLClient, analyst_client: GraphQLClient
) -> None:
    listed = (await analyst_client.data(CONDITIONS))["smartSearchConditions"]
    conditions = {c["condition"]: c for c in listed}
    assert conditions["has:mobile_phone"]["label"] == "Phone (mobile) on file"
    assert conditions["is:loyalty_member"]["label"] == "Loyalty member"
    assert {"has:email", "is:archived", "opted_in:TEXT", "opted_out:EMAIL", "source:loyalty", "points>=500"} <= set(
        conditions
    )
    assert all(c["label"] and c["description"] for c in listed)
    for entry in listed:
        body = await staff_client.execute(SEARCH, {"q": entry["condition"]})
        assert not body.get("errors"), (entry, body.get("errors"))
    assert await names(staff_client, conditions["tag:VIP"]["condition"]) == [ANN]
    del cast


# ------------------------------------------------ archived, erased, merged


async def test_archived_personas_appear_only_when_asked_for(
    cast: Cast, owner_client: GraphQLClient, staff_client: GraphQLClient
) -> None:
    await archive(owner_client, cast.annabel)
    assert await names(staff_client, "ann") == [ANN, JOANN]
    assert await names(staff_client, "annabel@example.com") == []
    assert await names(staff_client, "ann", archived=True) == [ANN, ANNABEL, JOANN]
    assert await names(staff_client, "annabel", archived=True) == [ANNABEL]
    assert await names(staff_client, "is:archived") == [ANNABEL]
    assert await names(staff_client, "ann is:archived") == [ANNABEL]
    data = (await staff_client.data(SEARCH, {"q": None}))["personas"]
    assert data["totalCount"] == 3


async def test_erased_and_merged_away_personas_never_appear(
    db: Database, org: Organization, cast: Cast, owner_client: GraphQLClient, staff_client: GraphQLClient
) -> None:
    # Given Joann erased by a privacy request, and Zed merged into an older persona
    await erase(owner_client, phone="415-555-0103")
    await merged_pair(db, org, "Zed", "415-555-0177", "zed@example.com")
    # Then neither is found by any search, archived or not
    for query in ("Joann", "Kaleel", '"Joann Kaleel"', "415-555-0103", "opted_out:TEXT", "Merged", "is:archived"):
        for archived in (False, True):
            assert await names(staff_client, query, archived=archived) == [], query
    # And the merged persona's contacts now find the survivor
    assert await names(staff_client, "zed@example.com") == ["Zed Survivor"]
    assert await names(staff_client, "zed") == ["Zed Survivor"]
    data = (await staff_client.data(SEARCH, {"q": None, "archived": True}))["personas"]
    assert data["totalCount"] == 4
    del cast


# ------------------------------------------------------------ bad queries

BAD = [
    ("foo:bar", 1, "Unknown condition 'foo:'"),
    ("vip tag:x foo:bar", 11, "Unknown condition"),
    ('ann "lee', 5, "Unclosed quote"),
    ('store:"Main', 7, "Unclosed quote"),
    ('"Ann Lee"x', 10, "after the closing quote"),
    ('""', 1, "Empty quotes"),
    ("points>abc", 8, "whole number"),
    ("has:email points>>5", 18, "Bad comparison"),
    ("points", None, None),
    ("spent>12.345", 7, "amount in dollars"),
    ("last_seen<soon", 11, "number of days"),
    ("signed_up>2024-13-01", 11, "not a date"),
    ("signed_up>=yesterday", 12, "YYYY-MM-DD"),
    ("signed_up=", 11, "Missing value"),
    (">=5", 1, "needs a field"),
    ("Ann=5", 1, "Unknown field 'Ann'"),
    ("is:member", 4, "is: takes one of loyalty_member, archived"),
    ("has:", 5, "has: needs a value"),
    ("opted_in:FAX", 10, "opted_in: takes one of"),
    ("attr:tier", 6, "KEY=VALUE"),
    ("tag:", 5, "Missing tag"),
    ("ann@", 1, "not a complete email"),
    ("415-555-01", 1, "not a valid phone number"),
    ('a"b"', 1, "Unexpected quote"),
]


@pytest.mark.parametrize(("query", "position", "fragment"), BAD, ids=[q for q, _, _ in BAD])
async def test_a_malformed_query_is_bad_query_saying_what_and_where(
    staff_client: GraphQLClient, query: str, position: int | None, fragment: str | None
) -> None:
    response = await staff_client.post(SEARCH, {"q": query})
    assert response.status_code == 200
    body = response.json()
    if position is None:
        # "points" alone is a name word, not a comparison.
        assert not body.get("errors")
        return
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_QUERY"
    assert f"at character {position}" in error["message"]
    assert fragment is not None
    assert fragment in error["message"]


def _error_position(typed: str) -> int | None:
    """Where parsing and compiling `typed` fails, or None when it does not."""
    try:
        parsed = parse_search(typed)
        for sqlite in (True, False):
            compile_search(parsed, uuid.uuid4(), Dialect(sqlite=sqlite))
    except SearchSyntaxError as e:
        return e.position
    return None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=string.printable + "éü€", max_size=40))
def test_any_text_parses_or_is_a_search_syntax_error_with_a_position(typed: str) -> None:
    # Anything else raised here would be a 500.
    position = _error_position(typed)
    assert position is None or 1 <= position <= len(typed) + 1


# ---------------------------------------------------------------- indexes

CROWD = 3000
FIRST_NAMES = ["Ann", "Bea", "Cy", "Dov", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo", "Kai", "Lu", "Mo", "Ned", "Oz"]
LAST_NAMES = ["Lee", "Park", "Stone", "Reyes", "Nakamura", "Okafor", "Silva", "Novak", "Haddad", "Berg"]


@pytest.fixture
async def crowd(db: Database, org: Organization) -> None:
    """Enough personas, keys, tags, attributes, consents and rollups for the planners to
    prefer the selective indexes, loaded in bulk, then ANALYZEd."""
    persona_rows, key_rows, tag_rows, attribute_rows, consent_rows, rollup_rows = [], [], [], [], [], []
    now = utcnow()
    for n in range(CROWD):
        id_ = new_id()
        first, last = FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[(n // 7) % len(LAST_NAMES)]
        phone, email = f"+1415{2_000_000 + n:07d}", f"person{n}@example.com"
        persona_rows.append(
            {
                "org_id": org.id,
                "id": id_,
                "number": 10_000 + n,
                "first_name": f"{first}{n}",
                "last_name": last,
                "email": email,
                "phone": phone,
                "source_kind": "RAW_FILE",
                "loyalty_member": n % 2 == 0,
                "created_at": now - dt.timedelta(minutes=n),
                "updated_at": now,
            }
        )
        key_rows += [
            {"org_id": org.id, "kind": "phone", "value": phone, "persona_id": id_, "created_at": now},
            {"org_id": org.id, "kind": "email", "value": email, "persona_id": id_, "created_at": now},
        ]
        tag_rows.append({"org_id": org.id, "persona_id": id_, "tag": f"tag{n % 50}", "created_at": now})
        attribute_rows.append(
            {
                "org_id": org.id,
                "persona_id": id_,
                "key": "tier",
                "value": f"t{n % 40}",
                "source": "MANUAL",
                "updated_at": now,
            }
        )
        consent_rows.append(
            {
                "org_id": org.id,
                "persona_id": id_,
                "channel": ["TEXT", "EMAIL", "VOICE_DROP", "LOYALTY"][n % 4],
                "status": "OPTED_IN",
                "source": "IMPORT",
                "updated_at": now,
            }
        )
        rollup_rows.append({"org_id": org.id, "persona_id": id_, "orders_count": n % 30})
    tables = SQLModel.metadata.tables
    async with db.session() as session, session.begin():
        for table, rows in (
            ("personas", persona_rows),
            ("identity_keys", key_rows),
            ("persona_tags", tag_rows),
            ("custom_attributes", attribute_rows),
            ("consents", consent_rows),
            ("persona_rollups", [{**EMPTY_ROLLUP, **r} for r in rollup_rows]),
            (
                "stores",
                [{"org_id": org.id, "id": new_id(), "name": f"Store {n}", "created_at": now} for n in range(200)],
            ),
        ):
            await session.execute(insert(tables[table]), rows)
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
        else:
            # VACUUM also moves the new rows out of the GIN index's pending list, as autovacuum would.
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))


EMPTY_ROLLUP: dict[str, int | None] = {
    c.name: None if c.name.endswith("_at") else 0
    for c in SQLModel.metadata.tables["persona_rollups"].columns
    if c.name not in ("org_id", "persona_id")
}


async def _plan(db: Database, query: str) -> str:
    async with db.read() as conn:
        org_id = (await conn.execute(select(PERSONAS.c.org_id).limit(1))).scalar_one()
        search = compile_search(parse_search(query), org_id, Dialect.of(conn))
        stmt = select(PERSONAS.c.id).where(*search.conditions)
        sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if db.is_sqlite:
            rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)).all()
            return "\n".join(str(r[-1]) for r in rows)
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(r[0] for r in (await conn.exec_driver_sql("EXPLAIN " + sql)).all())


# What each search form must read on PostgreSQL (enable_seqscan off, statistics fresh).
POSTGRESQL_INDEXES = [
    ("person1234@example.com", "identity_keys_pkey"),
    ("(415) 200-1234", "identity_keys_pkey"),
    ("nakamura", "ix_personas_name_trgm"),
    ("ann12", "ix_personas_name_trgm"),
    ('"Ann12 Lee"', "ix_personas_full_name"),
    ("tag:tag7", "ix_persona_tags_tag"),
    ("attr:tier=t3", "ix_custom_attributes_key_value"),
    ("opted_in:VOICE_DROP", "ix_consents_channel_status"),
    ('store:"Store 7"', "ix_stores_name"),
    ("orders>=29", "ix_persona_rollups_orders"),
]
SQLITE_INDEXES = [
    (
        "person1234@example.com",
        "SEARCH identity_keys USING INDEX sqlite_autoindex_identity_keys_1 (org_id=? AND kind=? AND value=?)",
    ),
    (
        "(415) 200-1234",
        "SEARCH identity_keys USING INDEX sqlite_autoindex_identity_keys_1 (org_id=? AND kind=? AND value=?)",
    ),
    ('"Ann12 Lee"', "ix_personas_first_name"),
    ("tag:tag7", "ix_persona_tags_tag"),
    ("attr:tier=t3", "ix_custom_attributes_key_value"),
    ("opted_in:VOICE_DROP", "ix_consents_channel_status"),
    ('store:"Store 7"', "ix_stores_name"),
]


@pytest.mark.usefixtures("crowd")
async def test_each_search_form_reads_its_index(db: Database) -> None:
    # Given a crowd of personas with fresh planner statistics
    for query, index in SQLITE_INDEXES if db.is_sqlite else POSTGRESQL_INDEXES:
        # When the search is planned, then it reads its index
        plan = await _plan(db, query)
        assert index in plan, (query, plan)
        if not db.is_sqlite:
            assert "Seq Scan" not in plan, (query, plan)
    # And exact phone and email search never scan a table on SQLite either
    for query in ("person1234@example.com", "(415) 200-1234"):
        plan = await _plan(db, query)
        assert "SCAN" not in plan if db.is_sqlite else "Seq Scan" not in plan, (query, plan)
