"""Every role against every guarded field, generated from the schema itself
and the one permission matrix: present when allowed, null plus FORBIDDEN at
the field's path when not. A new guarded field is covered without a change
here, as long as it hangs off a type listed in PATHS."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLObjectType, build_ast_schema, get_named_type, parse

from database import Database
from models import Organization
from permissions.matrix import MATRIX, Permission, Role
from schema import schema
from tests.conftest import ClientFactory
from tests.factories import make_persona

# How a query reaches an object of each type that has guarded fields.
PATHS: dict[str, list[str]] = {
    "Query": [],
    "Persona": ["persona"],
    "Traits": ["persona", "traits"],
    "PersonaHistory": ["persona", "history"],
}
# Arguments for guarded fields that need them.
ARGUMENTS: dict[str, str] = {
    "persona": "(id: $id)",
    "mergePreview": "(survivorId: $id, mergedId: $other)",
}


def guarded_fields() -> list[tuple[str, str, Permission]]:
    """(type, field, permission) for every field the served SDL marks @requiresPermission."""
    ast = parse(schema.as_str())
    found = []
    for definition in ast.definitions:
        for field in getattr(definition, "fields", None) or []:
            for directive in field.directives or []:
                if directive.name.value == "requiresPermission":
                    value = directive.arguments[0].value
                    found.append((definition.name.value, field.name.value, Permission(value.value)))  # type: ignore[attr-defined]
    return found


GUARDED = guarded_fields()
SERVED = build_ast_schema(parse(schema.as_str()))


def _selection(type_name: str, field: str) -> str:
    """A selection that reaches the field, with a minimal sub-selection for objects."""
    parent = SERVED.type_map[type_name]
    assert isinstance(parent, GraphQLObjectType)
    named = get_named_type(parent.fields[field].type)
    inner = ""
    if isinstance(named, GraphQLObjectType) or not hasattr(named, "serialize"):
        inner = " { __typename }"
    leaf = f"{field}{ARGUMENTS.get(field, '')}{inner}"
    for step in reversed(PATHS[type_name]):
        leaf = f"{step}{ARGUMENTS.get(step, '')} {{ {leaf} }}"
    return leaf


def test_every_guarded_type_is_reachable() -> None:
    assert len(GUARDED) >= 20
    assert {t for t, _, _ in GUARDED} <= set(PATHS), "add a path for the new type with guarded fields"


def _dig(data: Any, path: list[str]) -> Any:
    for step in path:
        if data is None:
            return None
        data = data[step]
    return data


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_sees_exactly_the_fields_its_permissions_allow(
    client_for: ClientFactory, db: Database, org: Organization, role: Role
) -> None:
    persona = await make_persona(db, org, first_name="Ann", phone="+14155550134", email="ann@example.com")
    other = await make_persona(db, org, first_name="Bo", phone="+14155550135")
    client = await client_for(role)
    for type_name, field, permission in GUARDED:
        selection = _selection(type_name, field)
        variables = {"id": persona.gid, "other": other.gid}
        used = {name: value for name, value in variables.items() if f"${name}" in selection}
        declared = ", ".join(f"${name}: ID!" for name in used)
        query = f"query ({declared}) {{ {selection} }}" if used else f"{{ {selection} }}"
        body = await client.execute(query, used)
        path = [*PATHS[type_name], field]
        forbidden = [e for e in body.get("errors") or [] if e["extensions"]["code"] == "FORBIDDEN"]
        if role in MATRIX[permission]:
            assert not forbidden, (type_name, field, role, body["errors"])
            assert not body.get("errors"), (type_name, field, role, body["errors"])
        else:
            assert _dig(body["data"], path) is None, (type_name, field, role)
            assert [e["path"] for e in forbidden] == [path], (type_name, field, role, body.get("errors"))


async def test_a_forbidden_field_leaves_the_rest_of_the_card(
    client_for: ClientFactory, db: Database, org: Organization
) -> None:
    persona = await make_persona(db, org, first_name="Ann", phone="+14155550134")
    analyst = await client_for(Role.ANALYST)
    body = await analyst.execute(
        "query ($id: ID!) { persona(id: $id) { firstName phone rewardPoints traits { ipAddress contactId } } }",
        {"id": persona.gid},
    )
    assert body["data"]["persona"]["firstName"] == "Ann"
    assert body["data"]["persona"]["phone"] is None
    assert body["data"]["persona"]["rewardPoints"] == 0
    assert body["data"]["persona"]["traits"]["contactId"]
    assert sorted(e["path"][-1] for e in body["errors"]) == ["ipAddress", "phone"]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
