"""Limits before execution (depth, aliases, tokens, directives, one
redeemDiscount per operation) and the query cost with its per-key bucket.

The full card document and the introspection query stay well inside every
limit (at most half of each), and run without an error."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from graphql import get_introspection_query, parse

from database import Database
from permissions.matrix import Role
from schema import schema as served
from schema.limits import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS, shapes
from schema.pricing import MAX_QUERY_COST, query_cost
from settings import Settings
from tests.factories import make_persona
from tests.hardening import World, world

CARD = (Path(__file__).resolve().parent.parent / "operations" / "card.graphql").read_text()
INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)
VIEWER = "{ viewer { name } }"
# Depth 13: persona > history > orders > nodes (two levels) > store > ... nested through mergedInto.
TOO_DEEP = (
    "query($id: ID!) { persona(id: $id) { mergedInto { mergedInto { mergedInto { mergedInto { mergedInto { "
    "mergedInto { mergedInto { history { orders { nodes { store { name } } } } } } } } } } } } }"
)
# The same depth is reached through edges { node } and through nodes.
EDGES_DEPTH = "query($id: ID!) { persona(id: $id) { history { orders { edges { node { store { name } } } } } } }"
NODES_DEPTH = "query($id: ID!) { persona(id: $id) { history { orders { nodes { store { name } } } } } }"
TWO_REDEEMS = """
mutation($a: RedeemDiscountInput!, $b: RedeemDiscountInput!) {
  first: redeemDiscount(input: $a) { userErrors { code } }
  second: redeemDiscount(input: $b) { userErrors { code } }
}
"""
COSTLY = "{ personas(first: 100) { nodes { history { orders(first: 100) { nodes { id } } } } } }"
PAGE = "query($n: Int) { personas(first: $n) { nodes { id } } }"
TOKENS = "{ viewer { " + " ".join(["name"] * MAX_TOKENS) + " } }"


@pytest.fixture
async def owner(session_db: Database, settings: Settings) -> AsyncIterator[World]:
    async with world(session_db, settings) as made:
        yield made


async def post(made: World, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    response = await made.client(**headers).post("/graphql", json={"query": query, "variables": variables or {}})
    body: dict[str, Any] = response.json()
    body["status"] = response.status_code
    return body


def refused_with(body: dict[str, Any], code: str, words: str) -> None:
    assert "data" not in body, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    assert words in body["errors"][0]["message"], body


def test_the_card_and_the_introspection_query_stay_well_inside_every_limit() -> None:
    schema = served._schema
    for name, text in (("card", CARD), ("introspection", INTROSPECTION)):
        document = parse(text)
        assert document.loc is not None
        tokens = len(list(_tokens(text)))
        assert tokens <= MAX_TOKENS // 2, (name, tokens)
        for _, shape in shapes(schema, document):
            assert shape.depth <= MAX_DEPTH // 2 + 1, (name, shape)
            assert shape.aliases <= MAX_ALIASES // 2, (name, shape)
        cost = query_cost(schema, document)
        assert cost <= MAX_QUERY_COST // 2, (name, cost)


def _tokens(text: str) -> Any:
    from graphql import Lexer, Source, TokenKind

    lexer = Lexer(Source(text))
    while lexer.advance().kind != TokenKind.EOF:
        yield lexer.token


async def test_the_card_and_the_introspection_query_run_without_error(session_db: Database, owner: World) -> None:
    persona = await make_persona(session_db, owner.org, email="card@example.com", phone="415-555-0199")
    card = await post(owner, CARD, {"id": persona.gid})
    assert card["status"] == 200
    assert "errors" not in card, card["errors"]
    assert card["data"]["persona"]["id"] == persona.gid
    introspection = await post(owner, INTROSPECTION)
    assert "errors" not in introspection, introspection["errors"]
    assert introspection["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_depth_counts_a_connection_as_two_levels(owner: World) -> None:
    schema = served._schema
    depths = {q: next(s.depth for _, s in shapes(schema, parse(q))) for q in (EDGES_DEPTH, NODES_DEPTH)}
    assert depths == {EDGES_DEPTH: 7, NODES_DEPTH: 7}
    refused_with(await post(owner, TOO_DEEP, {"id": "x"}), "BAD_QUERY", f"at most {MAX_DEPTH}")


async def test_too_many_aliases_are_refused(owner: World) -> None:
    aliases = " ".join(f"a{i}: viewer {{ name }}" for i in range(MAX_ALIASES + 1))
    refused_with(await post(owner, f"{{ {aliases} }}"), "BAD_QUERY", f"{MAX_ALIASES + 1} aliases")
    within = " ".join(f"a{i}: viewer {{ name }}" for i in range(MAX_ALIASES))
    assert "errors" not in await post(owner, f"{{ {within} }}")


async def test_too_many_tokens_are_refused(owner: World) -> None:
    body = await post(owner, TOKENS)
    refused_with(body, "BAD_QUERY", f"more than {MAX_TOKENS} tokens")


async def test_one_redeem_discount_per_operation(owner: World) -> None:
    body = await post(owner, TWO_REDEEMS, {"a": {}, "b": {}})
    refused_with(body, "BAD_QUERY", "redeemDiscount 2 times")


async def test_an_operation_over_the_cost_limit_is_refused_with_the_figures(owner: World) -> None:
    body = await post(owner, COSTLY)
    refused_with(body, "MAX_COST_EXCEEDED", f"at most {MAX_QUERY_COST}")
    error = body["errors"][0]
    assert error["extensions"]["cost"] == {"requestedQueryCost": 10402, "maximum": MAX_QUERY_COST}
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10402
    assert body["extensions"]["cost"]["actualQueryCost"] == 0
    # Under application/graphql-response+json a request that cannot run is a 400.
    strict = await post(owner, COSTLY, Accept="application/graphql-response+json")
    assert strict["status"] == 400


async def test_every_response_carries_the_cost(session_db: Database, owner: World) -> None:
    # Given three personas, and a page of 50 asked for
    for i in range(3):
        await make_persona(session_db, owner.org, email=f"cost{i}@example.com")
    body = await post(owner, PAGE, {"n": 50})
    # Then the requested cost is the static one, the actual one counts what came back
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 50 * 1
    assert cost["actualQueryCost"] == 2 + 3 * 1
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == owner.app.state.settings.cost_bucket_size
    assert status["restoreRate"] == owner.app.state.settings.cost_restore_rate
    assert status["currentlyAvailable"] <= status["maximumAvailable"]
    # And a refused request carries it too
    assert (await post(owner, "{ nope }"))["extensions"]["cost"]["requestedQueryCost"] == 0


async def test_an_empty_bucket_answers_throttled_with_retry_after(session_db: Database, settings: Settings) -> None:
    # Given keys whose buckets hold 50 points and refill 1 a second, and an operation costing 30
    small = dataclasses.replace(settings, cost_bucket_size=50, cost_restore_rate=1)
    thirty = "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(30)) + " }"
    async with world(session_db, small, roles=(Role.OWNER, Role.STAFF)) as made:
        owner, staff = made.client(Role.OWNER), made.client(Role.STAFF)
        # When the owner's key sends it twice in a row
        first = await owner.post("/graphql", json={"query": thirty})
        second = await owner.post("/graphql", json={"query": thirty})
        # Then the first runs and leaves about 20 points
        assert first.status_code == 200
        assert "errors" not in first.json()
        assert first.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] in range(20, 23)
        # And the second is THROTTLED: 429 with Retry-After, nothing run
        assert second.status_code == 429
        body = second.json()
        assert "data" not in body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["THROTTLED"]
        assert int(second.headers["retry-after"]) in range(8, 11)
        assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 50
        # And another key has a bucket of its own
        assert (await staff.post("/graphql", json={"query": thirty})).status_code == 200


RECORD_ORDERS = """
mutation($input: RecordOrdersInput!) { recordOrders(input: $input) { userErrors { code } results { outcome } } }
"""
NESTED = """
query($n: Int) {
  personas(first: $n) {
    nodes { history { orders(first: 5) { nodes { id lines { product } store { name } } } } }
  }
}
"""


def _order(n: int, email: str, lines: int) -> dict[str, Any]:
    return {
        "externalId": f"cost-{n}",
        "source": "cost-test",
        "customer": {"email": email},
        "placedAt": f"2025-01-{1 + n:02d}T12:00:00Z",
        "subtotal": "10.00",
        "tax": "1.50",
        "total": "11.50",
        "lines": [{"product": f"P{i}", "quantity": 1, "unitPrice": "10.00"} for i in range(lines)],
    }


async def test_the_actual_cost_counts_every_connection_node_returned_at_every_level(
    session_db: Database, owner: World
) -> None:
    # Given three personas: one with three orders (of one, two and three lines), one with
    # one order, one with none
    orders = [_order(0, "a@example.com", 1), _order(1, "a@example.com", 2), _order(2, "a@example.com", 3)]
    orders.append(_order(3, "b@example.com", 1))
    await make_persona(session_db, owner.org, email="c@example.com")
    written = await post(owner, RECORD_ORDERS, {"input": {"orders": orders}})
    assert written["data"]["recordOrders"]["userErrors"] == [], written

    # When a page of personas is read with each one's orders and their lines
    body = await post(owner, NESTED, {"n": 10})

    # Then requested = 2 + 10 personas x (1 + history 1 + orders (2 + 5 x (1 + lines 1 + store 1)));
    # actual counts the personas and the orders that came back: a list of lines is priced as
    # one object whatever its length, a null store as its selection
    per_order = 1 + 1 + 1
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 10 * (1 + 1 + 2 + 5 * per_order)
    returned = sorted(len(n["history"]["orders"]["nodes"]) for n in body["data"]["personas"]["nodes"])
    assert returned == [0, 1, 3]
    assert cost["actualQueryCost"] == 2 + sum(1 + 1 + 2 + k * per_order for k in returned)
