"""personas(query:) and the hidden personas: archived ones appear only when asked
for, erased and merged-away ones never, and a merged persona's contacts find the
survivor."""

from __future__ import annotations

from database import Database
from models import Organization
from tests import search_support
from tests.conftest import GraphQLClient
from tests.search_cast import SEARCH, Cast, archive, erase, merged_pair, names
from tests.search_support import ANN, ANNABEL, JOANN

cast = search_support.cast


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
