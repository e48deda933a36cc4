"""GraphQL over HTTP beyond the audit: media types and status codes, bounded
bodies, persisted queries, the request time limit, security headers and the
production profile."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from graphql import parse, print_ast
from sqlalchemy import text

from app import create_app
from database import Database
from permissions.matrix import Role
from settings import Settings, load_settings
from tests.factories import make_persona
from tests.hardening import World, world

OPERATIONS = Path(__file__).resolve().parent.parent / "operations"
HEADER = (OPERATIONS / "header.graphql").read_text()
VIEWER = "query Me { viewer { name } }"
UNKNOWN_FIELD = "{ viewer { shoeSize } }"
PERSONAS = "{ personas(first: 5) { totalCount } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"


def sha256(text_: str) -> str:
    return hashlib.sha256(text_.encode()).hexdigest()


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


@pytest.fixture
async def owner(session_db: Database, settings: Settings) -> AsyncIterator[World]:
    async with world(session_db, settings, roles=(Role.OWNER, Role.STAFF)) as made:
        yield made


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (None, "application/json"),
        ("text/html", "application/json"),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.9", "application/json"),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
    ],
)
async def test_the_answer_has_the_media_type_asked_for(owner: World, accept: str | None, media_type: str) -> None:
    headers = {"Accept": accept} if accept else {}
    http = owner.client(**headers)
    if accept is None:
        http.headers.pop("accept")
    response = await http.post("/graphql", json={"query": VIEWER})
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert response.json()["data"] == {"viewer": {"name": "hardening OWNER"}}


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("{ viewer { name ", {}),  # does not parse
        (UNKNOWN_FIELD, {}),  # does not validate
        ("query($id: ID!) { persona(id: $id) { id } }", {"id": None}),  # variables do not coerce
    ],
    ids=["parse", "validation", "coercion"],
)
async def test_a_request_that_cannot_run_has_no_data_and_is_a_400_under_graphql_response_json(
    owner: World, document: str, variables: dict[str, Any]
) -> None:
    payload = {"query": document, "variables": variables}
    strict = await owner.client(Accept=GRAPHQL_RESPONSE).post("/graphql", json=payload)
    legacy = await owner.client(Accept="application/json").post("/graphql", json=payload)
    assert (strict.status_code, legacy.status_code) == (400, 200)
    for response in (strict, legacy):
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] in {"BAD_QUERY", "BAD_USER_INPUT"}
        assert "cost" in body["extensions"]


async def test_a_field_error_keeps_status_200_and_the_data(owner: World) -> None:
    response = await owner.client(Accept=GRAPHQL_RESPONSE).post(
        "/graphql", json={"query": '{ persona(id: "bad") { id } viewer { name } }'}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"persona": None, "viewer": {"name": "hardening OWNER"}}
    assert body["errors"][0]["path"] == ["persona"]


async def test_queries_run_over_get_with_json_variables(owner: World) -> None:
    response = await owner.client().get(
        "/graphql", params={"query": "query($n: Int) { personas(first: $n) { totalCount } }", "variables": '{"n": 2}'}
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"personas": {"totalCount": 0}}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "application/json", 400),
        (b'{"query": ', "application/json", 400),
        (b'[{"query": "{ __typename }"}]', "application/json", 400),
        (b'"{ __typename }"', "application/json", 400),
        (b'{"query": 1}', "application/json", 400),
        (b'{"query": "{ __typename }", "operationName": 1}', "application/json", 400),
        (b'{"query": "{ __typename }", "variables": "x"}', "application/json", 400),
        (b'{"query": "{ __typename }", "extensions": []}', "application/json", 400),
        (b'{"qeury": "{ __typename }"}', "application/json", 400),
        (b'{"query": "{ __typename }"}', "text/plain", 415),
        (b"query=%7B__typename%7D", "application/x-www-form-urlencoded", 415),
        (b'{"query": "{ __typename }"}', "application/json; charset=latin-1", 415),
    ],
)
async def test_malformed_requests_are_refused_with_4xx(
    owner: World, body: bytes, content_type: str, status: int
) -> None:
    response = await owner.client().post("/graphql", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    answer = response.json()
    assert "data" not in answer
    assert answer["errors"][0]["extensions"]["code"] in {"BAD_QUERY", "BAD_USER_INPUT"}


async def test_bodies_over_the_limit_are_refused_with_413(session_db: Database, settings: Settings) -> None:
    small = dataclasses.replace(settings, max_body_bytes=1_000)
    big = {"query": VIEWER, "variables": {"padding": "x" * 2_000}}
    async with world(session_db, small) as made:
        http = made.client()
        # By its Content-Length, before reading it
        declared = await http.post("/graphql", json=big)
        assert declared.status_code == 413
        assert "larger than 1000 bytes" in declared.json()["errors"][0]["message"]

        # And streamed without one, as soon as it passes the bound
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"query": "query Me { viewer { name } }", "variables": {"padding": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}}'

        streamed = await http.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        # While a body within the bound runs
        assert (await http.post("/graphql", json={"query": VIEWER})).status_code == 200


async def test_a_persisted_query_runs_by_its_hash(session_db: Database, owner: World) -> None:
    persona = await make_persona(session_db, owner.org, email="header@example.com")
    http = owner.client()
    for digest in (sha256(HEADER), sha256(print_ast(parse(HEADER)))):
        # Over POST, by the hash of the file or of its canonical print (Apollo Client's)
        response = await http.post("/graphql", json={"variables": {"id": persona.gid}, "extensions": persisted(digest)})
        body = response.json()
        assert "errors" not in body, body
        assert body["data"]["persona"]["id"] == persona.gid
    # And over GET, cacheable
    response = await http.get(
        "/graphql",
        params={
            "variables": f'{{"id": "{persona.gid}"}}',
            "extensions": json.dumps(persisted(sha256(HEADER))),
        },
    )
    assert response.json()["data"]["persona"]["id"] == persona.gid


async def test_an_unknown_hash_is_persisted_query_not_found(owner: World) -> None:
    response = await owner.client().post("/graphql", json={"extensions": persisted("0" * 64)})
    body = response.json()
    assert response.status_code == 200
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # And a hash that does not match the document sent with it is bad input
    mismatch = await owner.client().post("/graphql", json={"query": VIEWER, "extensions": persisted("0" * 64)})
    assert mismatch.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_the_registered_documents_are_the_repository_operations(owner: World) -> None:
    registry = owner.app.state.persisted_queries
    assert set(registry.names.values()) == {p.stem for p in OPERATIONS.glob("*.graphql")}
    assert registry.documents[sha256(HEADER)] == HEADER


async def test_chosen_roles_may_run_only_registered_documents(session_db: Database, settings: Settings) -> None:
    # Given staff keys limited to the registered documents
    locked = dataclasses.replace(settings, persisted_only_roles=frozenset({Role.STAFF.value}))
    async with world(session_db, locked, roles=(Role.STAFF, Role.OWNER)) as made:
        persona = await make_persona(session_db, made.org, email="locked@example.com")
        staff, owner = made.client(Role.STAFF), made.client(Role.OWNER)
        # When staff sends a document of its own, it is refused
        free_form = await staff.post("/graphql", json={"query": VIEWER})
        assert free_form.status_code == 403
        assert free_form.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        # While a registered one runs, by hash or as its exact text
        by_hash = await staff.post(
            "/graphql", json={"variables": {"id": persona.gid}, "extensions": persisted(sha256(HEADER))}
        )
        assert by_hash.json()["data"]["persona"]["id"] == persona.gid
        as_text = await staff.post("/graphql", json={"query": HEADER, "variables": {"id": persona.gid}})
        assert as_text.json()["data"]["persona"]["id"] == persona.gid
        # And other roles are not limited
        assert (await owner.post("/graphql", json={"query": VIEWER})).json()["data"]["viewer"]["name"]


ADJUST = """
mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { persona { rewardPoints } userErrors { code } } }
"""
POINTS = "query($id: ID!) { persona(id: $id) { rewardPoints history { points(first: 5) { totalCount } } } }"


@contextlib.asynccontextmanager
async def writers_locked_out(db: Database) -> AsyncIterator[None]:
    """Another transaction holding what a write needs: on SQLite the write lock (BEGIN IMMEDIATE),
    on PostgreSQL the personas table."""
    async with db.engine.connect() as blocker:
        if db.is_sqlite:
            await blocker.begin()  # the engine begins writers with BEGIN IMMEDIATE
        else:
            await blocker.execute(text("BEGIN"))
            await blocker.execute(text("LOCK TABLE personas IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await blocker.rollback()


async def test_a_request_over_the_time_limit_is_stopped(session_db: Database, settings: Settings) -> None:
    quick = dataclasses.replace(settings, request_timeout_seconds=0.5)
    async with world(session_db, quick) as made:
        http = made.client()
        persona = await make_persona(session_db, made.org, email="slow@example.com")
        adjust = {"query": ADJUST, "variables": {"input": {"personaId": persona.gid, "delta": 7, "note": "x"}}}
        points = {"query": POINTS, "variables": {"id": persona.gid}}
        # (a first request records the key's use, so no write follows the ones below)
        assert (await http.post("/graphql", json=points)).json()["data"]["persona"]["rewardPoints"] == 0
        # Given another transaction holding what a write needs
        async with writers_locked_out(session_db):
            # When a mutation needs it, it is stopped at the limit, masked
            started = asyncio.get_running_loop().time()
            response = await http.post("/graphql", json=adjust)
            elapsed = asyncio.get_running_loop().time() - started
            if not session_db.is_sqlite:
                # (PostgreSQL's lock holds readers too: a query is stopped alike; SQLite's readers never wait)
                read = await http.post("/graphql", json={"query": PERSONAS})
                assert read.status_code == 503
        assert response.status_code == 503
        body = response.json()
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert "longer than 0.5 s" in body["errors"][0]["message"]
        assert 0.4 < elapsed < 3
        # And it wrote nothing: no points, no ledger entry
        card = (await http.post("/graphql", json=points)).json()["data"]["persona"]
        assert card == {"rewardPoints": 0, "history": {"points": {"totalCount": 0}}}
        # And no lock is left behind: the same mutation now runs, once
        again = (await http.post("/graphql", json=adjust)).json()["data"]["adjustPoints"]
        assert again == {"persona": {"rewardPoints": 7}, "userErrors": []}
        card = (await http.post("/graphql", json=points)).json()["data"]["persona"]
        assert card == {"rewardPoints": 7, "history": {"points": {"totalCount": 1}}}


async def test_html_pages_carry_security_headers(owner: World) -> None:
    anonymous = owner.client(None, Accept="text/html")
    page = await anonymous.get("/graphql")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'sha256-" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    api = await owner.client().post("/graphql", json={"query": VIEWER})
    assert api.headers["x-content-type-options"] == "nosniff"


def test_production_turns_graphiql_and_sqlite_off_unless_told(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PERSONAGRAPH_ENV", "production")
    monkeypatch.setenv("PERSONAGRAPH_SECRET", "a-production-secret")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.sqlite3'}")
    for name in ("GRAPHIQL", "ALLOW_SQLITE_IN_PRODUCTION"):
        monkeypatch.delenv(name, raising=False)
    # The server refuses to start on SQLite ...
    with pytest.raises(RuntimeError, match="refusing to serve production on SQLite"):
        create_app(load_settings())
    # ... unless told to; and GraphiQL is off ...
    monkeypatch.setenv("ALLOW_SQLITE_IN_PRODUCTION", "1")
    assert load_settings().graphiql is False
    assert create_app(load_settings()).state.graphql.graphql_ide is None
    # ... unless told to
    monkeypatch.setenv("GRAPHIQL", "1")
    assert create_app(load_settings()).state.graphql.graphql_ide == "graphiql"


async def test_production_hides_graphiql_and_field_suggestions(session_db: Database, settings: Settings) -> None:
    production = dataclasses.replace(
        settings, environment="production", secret="s", allow_sqlite_in_production=True, graphiql=False
    )
    async with world(session_db, production) as prod, world(session_db, settings) as dev:
        page = await prod.client(None, Accept="text/html").get("/graphql")
        assert page.status_code == 404
        hidden = (await prod.client().post("/graphql", json={"query": "{ viewer { nme } }"})).json()
        shown = (await dev.client().post("/graphql", json={"query": "{ viewer { nme } }"})).json()
        assert hidden["errors"][0]["message"] == "Cannot query field 'nme' on type 'Viewer'."
        assert "Did you mean 'name'?" in shown["errors"][0]["message"]
