"""Differential test: documents a compiled executor must get right answer exactly as the reference path does.

Ad-hoc documents (aliases, fragments, __typename everywhere, nested objects, directives,
restricted fields, several root fields, signed links, the other organization's
customer, history pages of other sizes and kinds) for the roles they differ by, and the
next history page by the cursors the first gave, go over HTTP to the reference app and
the fast one (tests/execution_parity_support.py); the status, the media type and the
whole body must be the same, byte for byte, after `normalise`.

The data (tests/execution_parity_world.py) is built once per backend, under two
organizations of this module's own (nothing else is emptied or read).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from permissions.matrix import Role
from tests import execution_parity_support
from tests.execution_parity_support import CARD, HEADER, HISTORY, World, assert_same_answer, resolve
from tests.execution_parity_world import RIVAL_OWNER

# The data and the two apps, built once per backend for this module.
world = execution_parity_support.world

ALIASES = """
query Aliases($id: ID!) {
  persona(id: $id) {
    key: id
    id
    balance: rewardPoints
    again: rewardPoints
    history {
      one: orders(first: 1) { totalCount pageInfo { hasNextPage endCursor } nodes { id total } }
      three: orders(first: 3) { totalCount pageInfo { hasNextPage endCursor } nodes { id placedAt } }
      newest: points(first: 2) { edges { cursor node { kind delta } } }
      oldest: points(last: 2) { pageInfo { hasPreviousPage startCursor } edges { cursor node { kind delta } } }
    }
    recent: timeline(first: 2) { edges { cursor node { __typename } } }
    some: timeline(first: 4, kinds: [ORDER, MESSAGE]) {
      edges { node { __typename ... on Order { externalId } ... on Message { body } } }
    }
  }
  same: persona(id: $id) { number fullName }
}
"""

FRAGMENTS = """
query Fragments($id: ID!) {
  persona(id: $id) {
    ...Who
    ... on Persona { tags loyaltyMember }
    ... { createdAt }
    history {
      orders(first: 3) { ...OrderPage }
      points(first: 3) { nodes { ...Entry } }
      merges { nodes { ...MergeRow } }
    }
    traits { ...Contact favoriteStore { ... on Node { id } name } }
    timeline(first: 6) { edges { node { ...Event } } }
  }
}
fragment Who on Persona { id number ...Names traits { mobilePhone } }
fragment Names on Persona { firstName lastName fullName traits { emailAddress birthday } }
fragment OrderPage on OrderConnection {
  totalCount
  nodes { id ... on Node { id } store { ...Place } lines { product quantity } }
}
fragment Place on Store { id name }
fragment Entry on PointsEntry { kind delta ... on Node { id } order { externalId } }
fragment MergeRow on Merge { kind mergedNumber reason movedCounts survivor { ...Names } }
fragment Contact on Traits { mobilePhone signups { formName hasSignature } }
fragment Event on TimelineEvent { __typename ... on Node { id } ... on Order { total } ... on PointsEntry { delta } }
"""

TYPENAMES = """
query Typenames($id: ID!) {
  __typename
  persona(id: $id) {
    __typename
    history {
      __typename
      orders(first: 2) {
        __typename
        pageInfo { __typename hasNextPage }
        edges { __typename node { __typename id store { __typename } } }
      }
    }
    traits { __typename signups { __typename } }
    optIns { __typename channel }
    shoppingHabits { __typename preferredBrand { __typename top { __typename name } } }
    timeline(first: 3) { __typename edges { node { __typename } } }
  }
  viewer { __typename organization { __typename } }
}
"""

NESTED_MERGED_INTO = """
query Nested($id: ID!) {
  persona(id: $id) {
    number
    mergedInto {
      id
      number
      mergedInto { id number mergedInto { id } }
      history { merges { totalCount } }
    }
  }
}
"""

SURVIVOR_HISTORY = """
query Survivors($id: ID!) {
  persona(id: $id) {
    history {
      merges {
        totalCount
        nodes { kind mergedNumber survivor { number history { orders(first: 2) { totalCount nodes { externalId } } } } }
      }
    }
  }
}
"""

DIRECTIVES = """
query Directives($id: ID!, $show: Boolean!) {
  persona(id: $id) {
    id
    email @include(if: $show)
    phone @skip(if: $show)
    history @include(if: $show) { orders(first: 2) { totalCount } }
    ... on Persona @skip(if: $show) { tags fullName }
    ...Both @include(if: $show)
    traits { mobilePhone @skip(if: false) birthday @include(if: false) }
  }
}
fragment Both on Persona { number rewardPoints }
"""

RESTRICTED = """
query Restricted($id: ID!) {
  persona(id: $id) {
    id
    email
    phone
    birthday
    walletPin
    links { staffApp }
    traits { mobilePhone browser ipAddress }
    rewardPoints
    timeline(first: 2) { edges { cursor } }
    history { messages(first: 1) { totalCount } points(first: 1) { totalCount } surveys(first: 1) { totalCount } }
  }
}
"""

BY_NUMBER = """
query ByNumber($number: Int!) {
  personaByNumber(number: $number) {
    id
    number
    fullName
    mergedInto { number }
    history { orders(first: 1) { totalCount } }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Persona { number fullName email mergedInto { id } history { orders(first: 1) { nodes { id } } } }
    ... on Store { name }
    ... on Organization { name slug }
  }
}
"""

WITH_VIEWER = """
query WithViewer($id: ID!) {
  viewer { name role permissions organization { id name slug } }
  persona(id: $id) { id number fullName email }
  loyaltySettings { pointsPerDollar pointsPerOrder showPinInWallets referralPointsEnabled pointsExpireAfterDays }
  discounts { name pointsCost startsAt endsAt }
  audiences { name query isDefault }
}
"""

LINKS = "query Links($id: ID!) { persona(id: $id) { links { staffApp sharing wallet referral pixelToken } walletPin } }"

AD_HOC = {
    "aliases": ALIASES,
    "fragments": FRAGMENTS,
    "typenames": TYPENAMES,
    "nested-merged-into": NESTED_MERGED_INTO,
    "survivor-history": SURVIVOR_HISTORY,
    "directives": DIRECTIVES,
    "restricted": RESTRICTED,
    "by-number": BY_NUMBER,
    "node": NODE,
    "with-viewer": WITH_VIEWER,
    "links": LINKS,
    "card": CARD,
    "header": HEADER,
    "history": HISTORY,
}
EVERY_ROLE = [role.value for role in Role]
OWNER_STAFF_ANALYST = [Role.OWNER.value, Role.STAFF.value, Role.ANALYST.value]


def _ad_hoc_cases() -> Iterator[Any]:
    """(document name, who, variables): "@x" is x's global id, "#x" its number (see `resolve`)."""
    grid: list[tuple[str, list[str], list[tuple[str, dict[str, Any]]]]] = [
        ("aliases", OWNER_STAFF_ANALYST, [("long", {"id": "@long"})]),
        ("aliases", [Role.OWNER.value], [("empty", {"id": "@empty"})]),
        ("fragments", OWNER_STAFF_ANALYST, [("full", {"id": "@full"})]),
        ("fragments", [Role.OWNER.value], [("merged", {"id": "@merged"})]),
        ("typenames", [Role.OWNER.value, Role.STAFF.value], [("full", {"id": "@full"})]),
        ("nested-merged-into", [Role.OWNER.value], [(p, {"id": f"@{p}"}) for p in ("twice", "merged", "full")]),
        (
            "survivor-history",
            [Role.OWNER.value, Role.STAFF.value],
            [(p, {"id": f"@{p}"}) for p in ("twice", "merged", "full")],
        ),
        (
            "directives",
            [Role.OWNER.value, Role.STAFF.value],
            [(f"full-{show}", {"id": "@full", "show": show}) for show in (True, False)],
        ),
        ("restricted", EVERY_ROLE, [("full", {"id": "@full"})]),
        ("restricted", [Role.OWNER.value, Role.ANALYST.value], [("erased", {"id": "@erased"})]),
        (
            "by-number",
            [Role.OWNER.value, Role.STAFF.value],
            [(p, {"number": f"#{p}"}) for p in ("full", "merged", "erased")] + [("unknown", {"number": 999_999})],
        ),
        (
            "node",
            [Role.OWNER.value],
            [(p, {"id": f"@{p}"}) for p in ("full", "merged", "store", "organization", "unknown", "rival")]
            + [("malformed", {"id": "not-an-id"})],
        ),
        ("node", [Role.STAFF.value, Role.ANALYST.value], [("full", {"id": "@full"})]),
        ("with-viewer", EVERY_ROLE, [("full", {"id": "@full"})]),
        ("links", [Role.OWNER.value, Role.ANALYST.value], [(p, {"id": f"@{p}"}) for p in ("full", "erased", "merged")]),
        # The other organization's owner reads its own customer, and ours does not exist for it.
        ("card", [RIVAL_OWNER], [("rival", {"id": "@rival"}), ("full", {"id": "@full"})]),
        ("header", [RIVAL_OWNER], [("rival", {"id": "@rival"})]),
        # History pages of other sizes and kinds, both directions.
        (
            "history",
            [Role.OWNER.value, Role.STAFF.value],
            [("long-first3-kinds", {"id": "@long", "first": 3, "timelineFirst": 3, "timelineKinds": ["ORDER"]})],
        ),
        (
            "history",
            [Role.OWNER.value],
            [
                ("long-last2", {"id": "@long", "last": 2}),
                ("full-no-kinds", {"id": "@full", "first": 1, "timelineKinds": []}),
            ],
        ),
    ]
    for document, roles, inputs in grid:
        for who in roles:
            for label, variables in inputs:
                yield pytest.param(document, who, variables, id=f"{document}-{who}-{label}")


@pytest.mark.parametrize(("document", "who", "variables"), list(_ad_hoc_cases()))
async def test_ad_hoc_documents_answer_the_same(
    world: World, document: str, who: str, variables: dict[str, Any]
) -> None:
    # Given a document with aliases, fragments, directives, nested objects or several root fields
    await assert_same_answer(world, who, {"query": AD_HOC[document], "variables": resolve(variables, world)})


@pytest.mark.parametrize("who", [Role.OWNER.value, Role.ANALYST.value])
async def test_the_next_history_page_answers_the_same(world: World, who: str) -> None:
    # Given the first page of the long history's connections and timeline
    first = {"id": world.ids["long"], "first": 3, "timelineFirst": 4}
    page = json.loads((await assert_same_answer(world, who, {"query": HISTORY, "variables": first})).text)
    persona = page["data"]["persona"]
    after = {
        f"{name}After": connection["pageInfo"]["endCursor"]
        for name, connection in persona["history"].items()
        if connection is not None
    }
    if persona["timeline"] is not None:
        after["timelineAfter"] = persona["timeline"]["pageInfo"]["endCursor"]

    # When the next page is asked for with the cursors the reference gave, then both answer the same
    await assert_same_answer(world, who, {"query": HISTORY, "variables": {**first, **after}})
