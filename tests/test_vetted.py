"""A query text answered once by its compiled plan is answered again past strawberry's
pipeline (schema/vetted.py): with the same body, charged the same cost, and whatever that
path may not answer (a viewer with fewer permissions, a bucket too low, a failure while
running) still gets the whole pipeline's answer, in its words."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

import schema.fast_exec
import schema.vetted
from app import create_app
from database import Database
from models import Organization
from permissions.keys import issue_key
from permissions.matrix import Role
from schema import schema as default_schema
from schema.ids import to_global_id
from settings import Settings
from tests.factories import make_persona

CARD = (Path(__file__).resolve().parent.parent / "operations" / "card.graphql").read_text()


def fresh(document: str) -> str:
    """The document under a text no test of this process has sent (vetted texts are kept per process)."""
    return f"# {uuid.uuid4()}\n{document}"


def unsigned(data: dict[str, Any]) -> dict[str, Any]:
    """The card's data without its signed links, whose tokens carry the second they were made."""
    persona = dict(data["persona"])
    if persona.get("links") is not None:
        persona["links"] = {k: v for k, v in persona["links"].items() if k not in ("wallet", "referral")}
    return {**data, "persona": persona}


@pytest.fixture
def pipeline_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the requests strawberry's pipeline (Schema.execute) answered."""
    runs: list[str] = []
    execute = default_schema.execute

    async def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append("pipeline")
        return await execute(*args, **kwargs)

    monkeypatch.setattr(default_schema, "execute", counted)
    return runs


@pytest.fixture
def plan_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the runs of a compiled plan, by the pipeline and past it."""
    runs: list[str] = []
    execute_plan = schema.fast_exec.execute_plan

    async def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append("plan")
        return await execute_plan(*args, **kwargs)

    monkeypatch.setattr(schema.fast_exec, "execute_plan", counted)
    monkeypatch.setattr(schema.vetted, "execute_plan", counted)
    return runs


async def _client(db: Database, settings: Settings, org: Organization, role: Role) -> AsyncIterator[httpx.AsyncClient]:
    async with db.session() as session, session.begin():
        key = (await issue_key(session, org_id=org.id, role=role, name=f"vetted {role}")).plaintext
    app = create_app(settings, database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        yield http


@pytest.fixture
async def owner(db: Database, settings: Settings, org: Organization) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(db, settings, org, Role.OWNER):
        yield http


async def test_a_text_answered_once_is_answered_again_past_the_pipeline_with_the_same_body(
    db: Database, org: Organization, owner: httpx.AsyncClient, pipeline_runs: list[str]
) -> None:
    # Given a card's text the compiled plan has answered once, through the whole pipeline
    persona = await make_persona(db, org, first_name="Ada", last_name="Byron", email="ada@example.com")
    payload = {"query": fresh(CARD), "variables": {"id": to_global_id("Persona", persona.id)}}
    first = await owner.post("/graphql", json=payload)
    assert pipeline_runs == ["pipeline"]

    # When it is asked again, without an operation name and with one
    again = await owner.post("/graphql", json=payload)
    named = await owner.post("/graphql", json={**payload, "operationName": "PersonaCard"})

    # Then the pipeline was not run again (the name it ran under is the text's only operation),
    # and the bodies are the same: data and cost alike
    assert pipeline_runs == ["pipeline"]
    reference = first.json()
    for answer in (again, named):
        assert answer.status_code == first.status_code == 200
        body = answer.json()
        assert unsigned(body["data"]) == unsigned(reference["data"])
        assert "errors" not in body
        cost, reference_cost = body["extensions"]["cost"], reference["extensions"]["cost"]
        assert cost["requestedQueryCost"] == reference_cost["requestedQueryCost"]
        assert cost["actualQueryCost"] == reference_cost["actualQueryCost"]


async def test_a_failure_while_running_a_vetted_text_gets_the_pipelines_answer_and_one_run(
    db: Database, org: Organization, owner: httpx.AsyncClient, plan_runs: list[str]
) -> None:
    # Given a vetted text
    query = fresh("query ($id: ID!) { persona(id: $id) { id number } }")
    persona = await make_persona(db, org, email="grace@example.com")
    assert (
        await owner.post("/graphql", json={"query": query, "variables": {"id": to_global_id("Persona", persona.id)}})
    ).status_code == 200
    plan_runs.clear()

    # When it names a persona there is none of (the plan's run raises)
    unknown = await owner.post(
        "/graphql", json={"query": query, "variables": {"id": to_global_id("Persona", uuid.UUID(int=1))}}
    )

    # Then graphql-core answers with its error and path, and the plan ran once, not again
    body = unknown.json()
    assert body["data"] == {"persona": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert body["errors"][0]["path"] == ["persona"]
    assert plan_runs == ["plan"]


async def test_a_viewer_who_may_see_less_gets_the_pipelines_answer_to_a_vetted_text(
    db: Database, settings: Settings, org: Organization, owner: httpx.AsyncClient
) -> None:
    # Given the card's text vetted for an owner
    persona = await make_persona(db, org, email="hedy@example.com", phone="(415) 555-0188")
    payload = {"query": fresh(CARD), "variables": {"id": to_global_id("Persona", persona.id)}}
    assert (await owner.post("/graphql", json=payload)).status_code == 200

    # When staff, who may not see all of it, ask for it; and the same with the compiled executor off
    async for staff in _client(db, settings, org, Role.STAFF):
        answered = (await staff.post("/graphql", json=payload)).json()
    async for reference in _client(db, replace(settings, fast_execution=False), org, Role.STAFF):
        expected = (await reference.post("/graphql", json=payload)).json()

    # Then the answers are the same: the fields staff may not see are null with FORBIDDEN
    assert unsigned(answered["data"]) == unsigned(expected["data"])
    assert answered["errors"] == expected["errors"]
    assert {e["extensions"]["code"] for e in answered["errors"]} == {"FORBIDDEN"}


async def test_a_vetted_text_the_bucket_cannot_pay_for_is_refused_in_the_pipelines_words(
    db: Database, settings: Settings, org: Organization, pipeline_runs: list[str]
) -> None:
    # Given a key whose bucket holds enough for one card, and the card's text vetted by it
    persona = await make_persona(db, org, email="joan@example.com")
    payload = {"query": fresh(CARD), "variables": {"id": to_global_id("Persona", persona.id)}}
    cost: dict[str, Any] = {}
    async for http in _client(db, settings, org, Role.OWNER):
        cost = (await http.post("/graphql", json=payload)).json()["extensions"]["cost"]
    requested, actual = cost["requestedQueryCost"], cost["actualQueryCost"]
    assert actual < requested  # a card charges what it read: less than its page sizes would allow
    # Enough for one card (its requested cost is taken, then all but its actual cost given back)
    tight = replace(settings, cost_bucket_size=requested + actual // 2, cost_restore_rate=1)
    async for http in _client(db, tight, org, Role.OWNER):
        assert (await http.post("/graphql", json=payload)).status_code == 200
        runs = len(pipeline_runs)

        # When it asks again, before the bucket has filled up
        refused = await http.post("/graphql", json=payload)

    # Then the pipeline refused it as it always does: 429, THROTTLED, when to retry
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(pipeline_runs) == runs + 1
