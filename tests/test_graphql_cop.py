"""The probes of the graphql-cop security audit, ported: one request each,
against the production profile, each getting the hardened answer."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from database import Database
from settings import Settings
from tests.hardening import world

SUGGESTION_PROBE = "query { __schema { directive } }"
ALIAS_PROBE = "query { " + " ".join(f"alias{i}:__typename" for i in range(101)) + " }"
DIRECTIVE_PROBE = "query { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }"
CIRCULAR_INTROSPECTION_PROBE = (
    "query { __schema { types { fields { type { fields { type { fields { type { fields { type { name } "
    "} } } } } } } } } }"
)
TYPENAME = "query { __typename }"
UNHANDLED_ERROR_PROBE = "qwerty cop { abc }"


@pytest.fixture
async def cop(session_db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    production = dataclasses.replace(
        settings, environment="production", secret="production-secret", allow_sqlite_in_production=True
    )
    async with world(session_db, production) as made:
        yield made.client()


def codes(body: dict[str, object]) -> list[object]:
    errors = body.get("errors")
    assert isinstance(errors, list), body
    return [e["extensions"]["code"] for e in errors]


async def test_field_suggestions_are_off_in_production(cop: httpx.AsyncClient) -> None:
    response = await cop.post("/graphql", json={"query": SUGGESTION_PROBE})
    body = response.json()
    assert codes(body) == ["BAD_QUERY"]
    assert "Did you mean" not in response.text
    assert body["errors"][0]["message"] == "Cannot query field 'directive' on type '__Schema'."


async def test_alias_overloading_is_refused(cop: httpx.AsyncClient) -> None:
    response = await cop.post("/graphql", json={"query": ALIAS_PROBE})
    body = response.json()
    assert "data" not in body
    assert codes(body) == ["BAD_QUERY"]
    assert "101 aliases" in body["errors"][0]["message"]


async def test_batch_queries_are_refused(cop: httpx.AsyncClient) -> None:
    response = await cop.post("/graphql", json=[{"query": TYPENAME}] * 10)
    assert response.status_code == 400
    body = response.json()
    assert not isinstance(body, list)
    assert "Batched operations are not supported" in body["errors"][0]["message"]


async def test_directive_overloading_gets_one_error(cop: httpx.AsyncClient) -> None:
    response = await cop.post("/graphql", json={"query": DIRECTIVE_PROBE})
    body = response.json()
    assert codes(body) == ["BAD_QUERY"]
    assert "10 directives" in body["errors"][0]["message"]


async def test_circular_introspection_is_refused(cop: httpx.AsyncClient) -> None:
    response = await cop.post("/graphql", json={"query": CIRCULAR_INTROSPECTION_PROBE})
    body = response.json()
    assert "data" not in body
    assert codes(body) == ["BAD_QUERY"]


async def test_mutation_over_get_is_not_allowed(cop: httpx.AsyncClient) -> None:
    response = await cop.get("/graphql", params={"query": "mutation {__typename}"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()


async def test_form_encoded_post_is_refused(cop: httpx.AsyncClient) -> None:
    response = await cop.post("/graphql", data={"query": TYPENAME})
    assert response.status_code == 415
    assert "data" not in response.json()


async def test_no_trace_mode(cop: httpx.AsyncClient) -> None:
    response = await cop.post("/graphql", json={"query": TYPENAME}, headers={"X-Trace": "1", "Apollo-Tracing": "1"})
    body = response.json()
    assert body["data"] == {"__typename": "Query"}
    assert set(body["extensions"]) == {"cost"}
    assert "tracing" not in response.text.lower()
    assert "stacktrace" not in response.text.lower()


async def test_unhandled_errors_are_handled_without_details(cop: httpx.AsyncClient) -> None:
    response = await cop.post("/graphql", json={"query": UNHANDLED_ERROR_PROBE})
    body = response.json()
    assert codes(body) == ["BAD_QUERY"]
    text = json.dumps(body).lower()
    for leak in ("exception", "stacktrace", "traceback", ".py", 'file "'):
        assert leak not in text, leak
