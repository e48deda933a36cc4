"""Differential test: persisted queries and bad requests answer exactly as the reference path does.

Every registered operation (operations/*.graphql) asked for by its hash only, hashes in
other spellings, over GET, unknown, not of the query sent or of an unsupported version,
and requests that cannot run whole (or at all) go over HTTP to the reference app and
the fast one (tests/execution_parity_support.py); the status, the media type and the
whole body must be the same, byte for byte, after `normalise`.

The data (tests/execution_parity_world.py) is built once per backend, under two
organizations of this module's own (nothing else is emptied or read).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from graphql import parse, print_ast

from permissions.matrix import Role
from tests import execution_parity_support
from tests.execution_parity_support import (
    CARD,
    DOCUMENTS,
    HEADER,
    HISTORY,
    OPERATION_LIST,
    World,
    assert_same_answer,
    resolve,
)

# The data and the two apps, built once per backend for this module.
world = execution_parity_support.world


# ---------------------------------------------------------------- persisted queries


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


@pytest.mark.parametrize(("stem", "name"), [pytest.param(s, n, id=s) for s, n, _, _ in OPERATION_LIST])
async def test_a_persisted_query_by_hash_answers_the_same(world: World, stem: str, name: str) -> None:
    # Given only the registered document's hash; when both apps run it, then they answer the same
    payload = {"extensions": persisted(sha256(DOCUMENTS[stem, name])), "variables": {"id": world.ids["archived"]}}
    await assert_same_answer(world, Role.STAFF.value, payload)


PERSISTED_CASES = [
    pytest.param("POST", {"extensions": persisted(sha256(print_ast(parse(CARD))))}, id="canonical-print-hash"),
    pytest.param("GET", {"extensions": persisted(sha256(HEADER))}, id="get-by-hash"),
    pytest.param("POST", {"extensions": persisted("0" * 64)}, id="unknown-hash"),
    pytest.param("POST", {"query": HEADER, "extensions": persisted("0" * 64)}, id="hash-not-of-the-query"),
    pytest.param("POST", {"extensions": {"persistedQuery": {"version": 2}}}, id="unsupported-version"),
]


@pytest.mark.parametrize(("method", "payload"), PERSISTED_CASES)
async def test_persisted_query_variants_answer_the_same(world: World, method: str, payload: dict[str, Any]) -> None:
    # Given a hash in another spelling, over GET, unknown, not of the query sent or of a version we do not speak
    await assert_same_answer(world, Role.OWNER.value, {**payload, "variables": {"id": world.ids["full"]}}, method)


# ---------------------------------------------------------------- bad requests

BAD_REQUESTS = [
    pytest.param({"query": "query { persona(id: ) { id } }"}, id="syntax-error"),
    pytest.param(
        {"query": "query ($id: ID!) { persona(id: $id) { shoeSize } }", "variables": {"id": "@full"}},
        id="unknown-field",
    ),
    pytest.param({"query": CARD}, id="missing-variable"),
    pytest.param({"query": CARD, "variables": {"id": "@full", "historyFirst": "ten"}}, id="historyFirst-not-an-int"),
    pytest.param({"query": CARD, "variables": {"id": "@full", "historyFirst": -1}}, id="historyFirst-negative"),
    pytest.param({"query": CARD, "variables": {"id": "@full", "historyFirst": 101}}, id="historyFirst-over-100"),
    pytest.param({"query": HISTORY, "variables": {"id": "@long", "ordersAfter": "nope"}}, id="malformed-cursor"),
    pytest.param({"query": HISTORY, "variables": {"id": "@long", "first": 2, "last": 2}}, id="first-and-last"),
    pytest.param({"query": CARD, "variables": {"id": "@full"}, "operationName": "Nope"}, id="unknown-operation-name"),
]


@pytest.mark.parametrize("payload", BAD_REQUESTS)
async def test_bad_requests_answer_the_same(world: World, payload: dict[str, Any]) -> None:
    # Given a request that cannot run whole (or at all); when both apps get it, then they answer the same
    await assert_same_answer(
        world, Role.OWNER.value, {**payload, "variables": resolve(payload.get("variables", {}), world)}
    )
