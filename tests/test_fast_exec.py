"""The compiled executor (schema/fast_exec.py): which documents it answers itself,
that it really answers them (graphql-core is not called), and that what it
cannot answer still gets graphql-core's exact answer.

tests/test_execution_parity_*.py compare whole answers of both paths for every
operation document, role and kind of persona; this module checks the
executor's own decisions."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema
from graphql import parse
from strawberry.schema.schema_converter import get_arguments

from models import Organization
from permissions.matrix import ROLE_PERMISSIONS, Role
from schema import schema
from schema.fast_exec import compile_plan
from schema.ids import to_global_id
from tests.conftest import ClientFactory
from tests.factories import make_persona

OPERATIONS = sorted((Path(__file__).resolve().parent.parent / "operations").glob("*.graphql"))
CARD = (Path(__file__).resolve().parent.parent / "operations" / "card.graphql").read_text()
EVERYTHING = frozenset(ROLE_PERMISSIONS[Role.OWNER])


def plan_for(document: str, permissions: frozenset[Any] = EVERYTHING, operation: str | None = None) -> Any:
    return compile_plan(schema._schema, parse(document), operation, permissions)


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_every_operation_document_compiles_for_a_viewer_who_may_see_everything(path: Path) -> None:
    assert plan_for(path.read_text()) is not None


def test_a_field_the_role_may_not_see_leaves_the_document_to_graphql_core() -> None:
    card = CARD
    staff = frozenset(ROLE_PERMISSIONS[Role.STAFF])
    assert staff != EVERYTHING
    assert plan_for(card, staff) is None
    assert plan_for("query ($id: ID!) { persona(id: $id) { id number firstName } }", staff) is not None


@pytest.mark.parametrize(
    "document",
    [
        "mutation { __typename }",
        "query ($id: ID!, $yes: Boolean!) { persona(id: $id) { id @include(if: $yes) } }",
        "{ __schema { queryType { name } } }",
        "query ($id: ID!) { persona(id: $id) { ... on Persona { id } history { ...H } } } "
        "fragment H on PersonaHistory { orders(first: 1) { totalCount } }",
    ],
    ids=["mutation", "directive", "introspection", "fragments-compile"],
)
def test_what_the_compiled_form_covers(document: str) -> None:
    compiles = "fragment H" in document
    assert (plan_for(document) is not None) is compiles


@pytest.fixture
def graphql_core_refuses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """graphql-core's execute, made to fail loudly: any request it would answer becomes an error."""
    calls: list[str] = []

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        calls.append("graphql-core")
        raise AssertionError("graphql-core was asked to execute")

    monkeypatch.setattr(strawberry_schema, "execute", refuse)
    return calls


async def test_the_card_is_answered_without_graphql_core(
    client_for: ClientFactory, db: Any, org: Organization, graphql_core_refuses: list[str]
) -> None:
    made = await make_persona(db, org, first_name="Ada", last_name="Byron", email="ada@example.com")
    owner = await client_for(Role.OWNER)
    data = await owner.data(CARD, {"id": to_global_id("Persona", made.id)})
    assert data["persona"]["fullName"] == "Ada Byron"
    assert data["persona"]["history"]["orders"]["totalCount"] == 0
    assert graphql_core_refuses == []


async def test_what_the_plan_cannot_answer_gets_graphql_cores_errors(
    client_for: ClientFactory, db: Any, org: Organization
) -> None:
    owner = await client_for(Role.OWNER)
    query = "query ($id: ID!) { persona(id: $id) { id number } }"
    unknown = await owner.execute(query, {"id": to_global_id("Persona", uuid.UUID(int=1))})
    assert unknown["data"] == {"persona": None}
    assert [e["extensions"]["code"] for e in unknown["errors"]] == ["NOT_FOUND"]
    assert unknown["errors"][0]["path"] == ["persona"]
    malformed = await owner.execute(query, {"id": "not-an-id"})
    assert [e["extensions"]["code"] for e in malformed["errors"]] == ["BAD_USER_INPUT"]
    # A page size out of range raises in the resolver: the answer is graphql-core's, with its path.
    made = await make_persona(db, org, email="grace@example.com")
    paged = await owner.execute(
        "query ($id: ID!) { persona(id: $id) { history { orders(first: 1000) { totalCount } } } }",
        {"id": to_global_id("Persona", made.id)},
    )
    assert paged["errors"][0]["path"] == ["persona", "history", "orders"]
    assert paged["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert paged["data"] == {"persona": {"history": {"orders": None}}}


async def test_resolvers_with_scalar_arguments_are_called_by_the_executor_itself(
    client_for: ClientFactory, db: Any, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given strawberry's argument conversion, watched
    converted: list[str] = []

    def watched(*, field: Any, **kwargs: Any) -> Any:
        converted.append(field.python_name)
        return get_arguments(field=field, **kwargs)

    monkeypatch.setattr("schema.fast_exec.get_arguments", watched)
    made = await make_persona(db, org, email="ada@example.com")
    owner = await client_for(Role.OWNER)
    variables = {"id": to_global_id("Persona", made.id)}

    # When the card is read (persona(id:), each history connection's first:), pages given and not
    card = await owner.data(CARD, variables)
    paged = await owner.data(
        "query ($id: ID!) { persona(id: $id) { history { orders(first: 1) { totalCount } points { totalCount } } } }",
        variables,
    )

    # And the Personas page with a camelCased argument (includeArchived), given and not
    archived = await owner.data('{ personas(query: "ada@example.com", includeArchived: true) { totalCount } }')
    listed = await owner.data("{ personas(first: 5) { totalCount } }")

    # Then it answers, and none of those went through strawberry's conversion (scalars only)
    assert card["persona"]["id"] == variables["id"]
    assert paged["persona"]["history"] == {"orders": {"totalCount": 0}, "points": {"totalCount": 0}}
    assert archived == listed == {"personas": {"totalCount": 1}}
    assert converted == []

    # While an argument strawberry converts (a list of enums) still goes through it
    kinds = "query ($id: ID!) { persona(id: $id) { timeline(first: 5, kinds: [ORDER]) { nodes { __typename } } } }"
    assert (await owner.data(kinds, variables))["persona"]["timeline"] == {"nodes": []}
    assert converted == ["timeline"]
