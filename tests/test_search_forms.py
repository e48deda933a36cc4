"""personas(query:): every search form (email, phone, quoted and bare names),
relevance then recency, paging and totalCount over a search, what the page shows
of each persona, and searches that stay inside the organization."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import SQLModel

from database import Database
from models import Organization
from tests import search_support
from tests.conftest import GraphQLClient
from tests.factories import make_persona
from tests.search_cast import SEARCH, names
from tests.search_support import ANN, ANNABEL, BOB, JOANN

cast = search_support.cast


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
