"""Paging the History tab: each history connection and the timeline walked page
by page, forwards and backwards, with keyset cursors that survive rows arriving
between pages, and bad page arguments answered as bad user input.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from database import Database
from models import Organization
from models.base import utcnow
from tests.conftest import GraphQLClient
from tests.factories import days_ago
from tests.history_support import ANN_PHONE, FIELDS, PAGE_INFO, TIMELINE_PAGE, given_history

HISTORY_PAGE = """
query ($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  persona(id: $id) {
    history {
      FIELD(first: $first, after: $after, last: $last, before: $before) {
        totalCount
        PAGE_INFO
        edges { cursor node { id } }
        nodes { id }
      }
    }
  }
}
""".replace("PAGE_INFO", PAGE_INFO)
# One page document per history connection.
PAGE_DOCUMENTS = {name: HISTORY_PAGE.replace("FIELD", name) for name in FIELDS}


def connection_of(data: dict[str, Any], name: str) -> dict[str, Any]:
    persona = data["persona"]
    found: dict[str, Any] = persona["timeline"] if name == "timeline" else persona["history"][name]
    return found


async def walk(
    client: GraphQLClient,
    persona_gid: str,
    name: str,
    *,
    forward: bool,
    size: int,
    between_pages: Callable[[int], Awaitable[None]],
) -> list[str]:
    """Every id met walking the connection page by page, newest first (forward)
    or oldest first (backward), with `between_pages` run after each page."""
    document = TIMELINE_PAGE if name == "timeline" else PAGE_DOCUMENTS[name]
    seen: list[str] = []
    cursor: str | None = None
    for page_number in range(50):
        if forward:
            variables = {"id": persona_gid, "first": size, "after": cursor}
        else:
            variables = {"id": persona_gid, "last": size, "before": cursor}
        page = connection_of(await client.data(document, variables), name)
        ids = [edge["node"]["id"] for edge in page["edges"]]
        assert len(ids) <= size
        seen.extend(ids if forward else reversed(ids))
        info = page["pageInfo"]
        if not (info["hasNextPage"] if forward else info["hasPreviousPage"]):
            return seen
        cursor = info["endCursor"] if forward else info["startCursor"]
        await between_pages(page_number)
    raise AssertionError("the walk never ended")


# ---------------------------------------------------------------- page walks


@pytest.mark.parametrize("name", [*FIELDS, "timeline"])
async def test_walking_forwards_and_backwards_meets_every_row_once_while_rows_arrive(
    db: Database, org: Organization, owner_client: GraphQLClient, name: str
) -> None:
    # Given seven rows of the kind (of every kind, for the timeline), spread over a week
    ann = await given_history(db, org, ANN_PHONE)
    kinds = FIELDS if name == "timeline" else [name]
    oldest = days_ago(8)
    for day in range(7, 0, -1):
        for kind in kinds:
            await ann.add(kind, days_ago(day))
    before_walk = await owner_client.data(
        TIMELINE_PAGE if name == "timeline" else PAGE_DOCUMENTS[name], {"id": ann.persona.gid, "first": 100}
    )
    existing = [e["node"]["id"] for e in connection_of(before_walk, name)["edges"]]
    assert existing == ann.newest_first(*([] if name == "timeline" else [name]))
    middle = oldest + (utcnow() - oldest) / 2

    async def rows_arrive(page_number: int) -> None:
        # A newer row, and one dated inside the range being walked (for the
        # first pages only, so that a walk towards the newest end finishes).
        if page_number >= 4:
            return
        await ann.add(kinds[page_number % len(kinds)], utcnow())
        await ann.add(kinds[(page_number + 3) % len(kinds)], middle)

    for forward in (True, False):
        # When the owner walks it a few rows at a time while new rows arrive between pages
        size = 7 if name == "timeline" else 3
        seen = await walk(owner_client, ann.persona.gid, name, forward=forward, size=size, between_pages=rows_arrive)

        # Then every row that was there is met exactly once, and nothing twice
        assert len(seen) == len(set(seen)), f"a row came twice walking {'forwards' if forward else 'backwards'}"
        assert set(existing) <= set(seen), "a row was skipped"
        met = [gid for gid in seen if gid in set(existing)]
        assert met == (existing if forward else list(reversed(existing)))


# ---------------------------------------------------------------- bad page arguments


BAD_PAGES = [
    pytest.param({"first": 5, "after": "not-a-cursor"}, id="malformed-cursor"),
    pytest.param({"first": 5, "after": "bm9wZQ"}, id="base64-but-not-a-cursor"),
    pytest.param({"last": 5, "before": "%%%"}, id="malformed-before"),
    pytest.param({"first": 5, "last": 5}, id="first-and-last"),
    pytest.param({"first": 101}, id="first-over-100"),
    pytest.param({"last": 101}, id="last-over-100"),
    pytest.param({"first": -1}, id="negative-first"),
]


@pytest.mark.parametrize("arguments", BAD_PAGES)
@pytest.mark.parametrize("name", ["orders", "merges", "timeline"])
async def test_bad_page_arguments_are_bad_user_input(
    db: Database, org: Organization, owner_client: GraphQLClient, name: str, arguments: dict[str, Any]
) -> None:
    # Given a persona with history
    ann = await given_history(db, org, ANN_PHONE)
    await ann.add("orders", days_ago(1))

    # When a page is asked for with bad arguments
    document = TIMELINE_PAGE if name == "timeline" else PAGE_DOCUMENTS[name]
    response = await owner_client.post(document, {"id": ann.persona.gid, **arguments})

    # Then that connection is null with one BAD_USER_INPUT error, never a 500
    assert response.status_code == 200
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    path = ["persona", "timeline"] if name == "timeline" else ["persona", "history", name]
    assert body["errors"][0]["path"] == path
    assert connection_of(body["data"], name) is None
