"""personas(query:) and bad queries: a malformed query is BAD_QUERY saying what is
wrong and at which character, and any text either parses or is a search syntax error
with a position (never a 500)."""

from __future__ import annotations

import string
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolvers.search import SearchSyntaxError, parse_search
from resolvers.search_sql import compile_search
from resolvers.search_terms import Dialect
from tests.conftest import GraphQLClient
from tests.search_cast import SEARCH

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
