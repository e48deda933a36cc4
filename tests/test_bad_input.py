"""Malformed input anywhere gets BAD_USER_INPUT (or a userError), never a 500.

Derived from the served schema, so fields added later are covered: every
Date, DateTime, Decimal and enum position of every mutation input (sent as
variables and as literals), every ID argument of the root Query fields, every
cursor of the connections reachable from the root and from a persona, and
every batch list of a mutation input (more than 1,000 rows: TOO_MANY).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined

from database import Database
from schema import schema as served
from schema.ids import to_global_id
from schema.limits import is_connection
from settings import Settings
from tests.factories import make_persona
from tests.hardening import World, world

SCHEMA = served._schema
MALFORMED = {"Date": "2024-02-30", "DateTime": "yesterday at noon", "Decimal": "12,50 €"}
BAD_ENUM = "NOT_A_VALUE"
BAD_ID = "%%%not-an-id"
BAD_CURSOR = "%%%not-a-cursor"
BATCH_LIMIT = 1_000


def dummy(type_: GraphQLInputType) -> Any:
    """A well-formed value for an input type: required fields only, empty lists."""
    if isinstance(type_, GraphQLNonNull):
        return dummy(type_.of_type)
    if isinstance(type_, GraphQLList):
        return []
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: dummy(f.type)
            for name, f in type_.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        }
    assert isinstance(type_, GraphQLScalarType)
    return {
        "String": "x",
        "Int": 1,
        "Float": 1.0,
        "Boolean": False,
        "ID": to_global_id("Persona", uuid.uuid4()),
        "Date": "2020-01-01",
        "DateTime": "2020-01-01T00:00:00+00:00",
        "Decimal": "1",
    }.get(type_.name, "x")


@dataclass(frozen=True)
class Position:
    """A leaf input position of a mutation, with the whole input value that breaks it."""

    mutation: str
    argument: str
    argument_type: GraphQLInputType
    path: tuple[str, ...]
    value: Any
    leaf: str

    @property
    def id(self) -> str:
        return f"{self.mutation}.{'.'.join(self.path)}"


def _with(type_: GraphQLInputType, path: tuple[str, ...], bad: Any) -> Any:
    """The dummy value of `type_` with the leaf at `path` replaced by `bad` (one item per list on the way)."""
    if not path:
        return bad
    if isinstance(type_, GraphQLNonNull):
        return _with(type_.of_type, path, bad)
    if isinstance(type_, GraphQLList):
        return [_with(type_.of_type, path, bad)]
    assert isinstance(type_, GraphQLInputObjectType)
    value = dummy(type_)
    value[path[0]] = _with(type_.fields[path[0]].type, path[1:], bad)
    return value


def _leaves(type_: GraphQLInputType, seen: frozenset[str]) -> Iterator[tuple[tuple[str, ...], GraphQLNamedType]]:
    named = get_named_type(type_)
    if isinstance(named, GraphQLInputObjectType):
        if named.name in seen:
            return
        for name, f in named.fields.items():
            for path, leaf in _leaves(f.type, seen | {named.name}):
                yield (name, *path), leaf
    else:
        yield (), named


def typed_positions() -> list[Position]:
    found: list[Position] = []
    mutation = SCHEMA.mutation_type
    assert mutation is not None
    for field_name, field in mutation.fields.items():
        for arg_name, arg in field.args.items():
            for path, leaf in _leaves(arg.type, frozenset()):
                named = get_named_type(leaf)
                if isinstance(named, GraphQLEnumType):
                    bad: Any = BAD_ENUM
                elif named.name in MALFORMED:
                    bad = MALFORMED[named.name]
                else:
                    continue
                value = _with(arg.type, path, bad)
                found.append(Position(field_name, arg_name, arg.type, path, value, named.name))
    return found


def batch_lists() -> list[Position]:
    """The batches: lists of input objects at the top of the input of a mutation that answers
    one result per row (its payload has `results`)."""
    found: list[Position] = []
    mutation = SCHEMA.mutation_type
    assert mutation is not None
    for field_name, field in mutation.fields.items():
        payload = get_named_type(field.type)
        if not isinstance(payload, GraphQLObjectType) or "results" not in payload.fields:
            continue
        for arg_name, arg in field.args.items():
            named = get_named_type(arg.type)
            if not isinstance(named, GraphQLInputObjectType):
                continue
            for list_name, list_field in named.fields.items():
                inner = list_field.type.of_type if isinstance(list_field.type, GraphQLNonNull) else list_field.type
                if isinstance(inner, GraphQLList) and isinstance(get_named_type(inner), GraphQLInputObjectType):
                    item = dummy(inner.of_type)
                    value = {**dummy(named), list_name: [item] * (BATCH_LIMIT + 1)}
                    found.append(Position(field_name, arg_name, arg.type, (list_name,), value, "list"))
    return found


def literal(value: Any, type_: GraphQLInputType) -> str:
    """`value` as a GraphQL literal of `type_` (enum values bare)."""
    if isinstance(type_, GraphQLNonNull):
        return literal(value, type_.of_type)
    if isinstance(type_, GraphQLList):
        return "[" + ", ".join(literal(v, type_.of_type) for v in value) + "]"
    if isinstance(type_, GraphQLInputObjectType):
        return "{" + ", ".join(f"{k}: {literal(v, type_.fields[k].type)}" for k, v in value.items()) + "}"
    if isinstance(type_, GraphQLEnumType):
        return str(value)
    return json.dumps(value)


def _selection(field: GraphQLField) -> str:
    named = get_named_type(field.type)
    return "" if is_leaf_type(named) else "{ __typename }"


def codes(body: dict[str, Any]) -> set[str]:
    return {e["extensions"]["code"] for e in body.get("errors", [])}


@pytest.fixture
async def owner(session_db: Database, settings: Settings) -> AsyncIterator[World]:
    async with world(session_db, settings) as made:
        yield made


async def test_malformed_dates_decimals_and_enums_in_mutation_inputs_are_bad_user_input(owner: World) -> None:
    positions = typed_positions()
    assert {p.leaf for p in positions} >= {"Date", "DateTime", "Decimal"}
    http = owner.client()
    wrong: list[str] = []
    for position in positions:
        field = SCHEMA.mutation_type.fields[position.mutation]  # type: ignore[union-attr]
        call = f"{position.mutation}({position.argument}: $value) {_selection(field)}"
        as_variables = f"mutation($value: {position.argument_type}) {{ {call} }}"
        as_literal = (
            f"mutation {{ {position.mutation}({position.argument}: "
            f"{literal(position.value, position.argument_type)}) {_selection(field)} }}"
        )
        for document, variables in ((as_variables, {"value": position.value}), (as_literal, {})):
            response = await http.post("/graphql", json={"query": document, "variables": variables})
            body = response.json()
            if response.status_code != 200 or "data" in body or codes(body) != {"BAD_USER_INPUT"}:
                wrong.append(f"{position.id} ({'variables' if variables else 'literal'}): {body}")
    assert wrong == [], "\n".join(wrong)


def _fields_with_ids() -> list[str]:
    query = SCHEMA.query_type
    assert query is not None
    return [
        name
        for name, field in query.fields.items()
        if any(get_named_type(a.type).name == "ID" for a in field.args.values())
    ]


def _arguments(args: dict[str, GraphQLArgument], override: dict[str, Any]) -> str:
    values = {
        name: override.get(name, dummy(arg.type))
        for name, arg in args.items()
        if name in override or (isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined)
    }
    if not values:
        return ""
    return "(" + ", ".join(f"{k}: {literal(v, args[k].type)}" for k, v in values.items()) + ")"


async def test_malformed_global_ids_are_bad_user_input(owner: World) -> None:
    fields = _fields_with_ids()
    assert {"persona", "mergePreview"} <= set(fields)
    http = owner.client()
    wrong: list[str] = []
    for field_name in fields:
        field = SCHEMA.query_type.fields[field_name]  # type: ignore[union-attr]
        ids = [name for name, arg in field.args.items() if get_named_type(arg.type).name == "ID"]
        # Every ID argument malformed at once, then each alone beside well-formed ids of unknown personas
        # (so a field that looked one id up before parsing the next would answer NOT_FOUND).
        cases = [ids] + ([[name] for name in ids] if len(ids) > 1 else [])
        for malformed in cases:
            arguments = _arguments(field.args, dict.fromkeys(malformed, BAD_ID))
            document = f"{{ {field_name}{arguments} {_selection(field)} }}"
            body = (await http.post("/graphql", json={"query": document})).json()
            if codes(body) != {"BAD_USER_INPUT"} or not any("Malformed ID" in e["message"] for e in body["errors"]):
                wrong.append(f"{field_name} ({', '.join(malformed)} malformed): {body}")
    assert wrong == [], "\n".join(wrong)


def _connections(type_: GraphQLObjectType, depth: int) -> Iterator[tuple[str, ...]]:
    """Paths to every connection field below `type_` (non-null object fields followed `depth` levels)."""
    for name, field in type_.fields.items():
        named = get_named_type(field.type)
        if is_connection(named) and "after" in field.args:
            yield (name,)
        elif (
            depth > 0
            and not field.args
            and isinstance(field.type, GraphQLNonNull)
            and isinstance(field.type.of_type, GraphQLObjectType)  # always there: the connection below runs
        ):
            for path in _connections(named, depth - 1):
                yield (name, *path)


def _nested(path: tuple[str, ...], first_arguments: str = "") -> str:
    """`{ a(args) { b { c(after: $cursor) { pageInfo { hasNextPage } } } } }` for the path a.b.c."""
    inner = f"{path[-1]}(after: $cursor) {{ pageInfo {{ hasNextPage }} }}"
    for depth, name in reversed(list(enumerate(path[:-1]))):
        inner = f"{name}{first_arguments if depth == 0 else ''} {{ {inner} }}"
    return f"{{ {inner} }}"


async def test_malformed_cursors_are_bad_user_input(session_db: Database, owner: World) -> None:
    # Given a persona, and every connection of the root and of a persona
    persona = await make_persona(session_db, owner.org, email="cursor@example.com")
    query = SCHEMA.query_type
    persona_type = SCHEMA.get_type("Persona")
    assert query is not None
    assert isinstance(persona_type, GraphQLObjectType)
    documents = [_nested(path) for path in _connections(query, 0)]
    documents += [_nested(("persona", *path), f'(id: "{persona.gid}")') for path in _connections(persona_type, 2)]
    assert len(documents) >= 5, documents
    http = owner.client()
    for document in documents:
        # When each is asked for a page after a malformed cursor
        response = await http.post(
            "/graphql", json={"query": f"query($cursor: String) {document}", "variables": {"cursor": BAD_CURSOR}}
        )
        # Then the answer is BAD_USER_INPUT, never a 500
        body = response.json()
        assert response.status_code == 200, body
        assert codes(body) == {"BAD_USER_INPUT"}, (document, body)


@pytest.mark.parametrize("position", batch_lists(), ids=lambda p: p.id)
async def test_batches_over_1000_rows_are_too_many(owner: World, position: Position) -> None:
    document = (
        f"mutation($value: {position.argument_type}) "
        f"{{ {position.mutation}({position.argument}: $value) {{ userErrors {{ field code }} }} }}"
    )
    body = (
        await owner.client().post("/graphql", json={"query": document, "variables": {"value": position.value}})
    ).json()
    assert "errors" not in body, body
    payload = body["data"][position.mutation]
    assert [e["code"] for e in payload["userErrors"]] == ["TOO_MANY"], payload
    assert payload["userErrors"][0]["field"][-1] == position.path[0]


def test_the_batch_mutations_are_found() -> None:
    assert {p.mutation for p in batch_lists()} >= {"ingestContacts", "recordOrders"}
