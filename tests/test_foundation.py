"""The service basics: probes, authentication, the viewer and persona lookups."""

from __future__ import annotations

import re

import pytest

from loaders.nodes import NODE_TABLES
from models import Organization
from permissions.matrix import ROLE_PERMISSIONS, Role
from schema import schema as served
from schema.nodes import node_type
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import make_persona

VIEWER = "{ viewer { name role permissions organization { id name slug } } }"
PERSONA_HEADER = """
query ($id: ID!) {
  persona(id: $id) {
    id number firstName lastName fullName createdAt archivedAt loyaltyMember loyaltySignupAt
    email phone birthday sourcedFrom { kind integration } mergedInto { id }
  }
}
"""
BY_NUMBER = "query ($n: Int!) { personaByNumber(number: $n) { id number } }"
NODE = "query ($id: ID!) { node(id: $id) { id ... on Persona { number } } }"
PERSONAS = """
query ($first: Int, $after: String, $last: Int, $before: String) {
  personas(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { number } }
    nodes { number }
  }
}
"""


async def test_health_probes_answer_without_a_key(owner_client: GraphQLClient) -> None:
    assert (await owner_client.http.get("/healthz")).json() == {"status": "ok"}
    ready = await owner_client.http.get("/readyz")
    assert ready.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer pgk_00000000_" + "x" * 30},
    ],
)
async def test_requests_without_a_valid_key_get_one_unauthenticated_error(
    client_for: ClientFactory, headers: dict[str, str]
) -> None:
    client = await client_for(None)
    response = await client.http.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_graphiql_page_loads_without_a_key(client_for: ClientFactory) -> None:
    client = await client_for(None)
    response = await client.http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_sees_itself_as_viewer(client_for: ClientFactory, org: Organization, role: Role) -> None:
    client = await client_for(role)
    viewer = (await client.data(VIEWER))["viewer"]
    assert viewer["role"] == role.value
    assert viewer["organization"]["name"] == org.name
    assert viewer["organization"]["slug"] == "acme"
    assert set(viewer["permissions"]) == {p.value for p in ROLE_PERMISSIONS[role]}


async def test_persona_header_by_id_number_and_node(owner_client: GraphQLClient, db: object, org: Organization) -> None:
    persona = await make_persona(
        db, org, first_name="Ann", last_name="Lee", phone="(415) 555-0134", email="Ann@Example.com"
    )
    data = (await owner_client.data(PERSONA_HEADER, {"id": persona.gid}))["persona"]
    assert data["fullName"] == "Ann Lee"
    assert data["email"] == "ann@example.com"
    assert data["phone"] == "+14155550134"
    assert data["sourcedFrom"] == {"kind": "INTEGRATION", "integration": "test-pos"}
    assert data["mergedInto"] is None
    by_number = (await owner_client.data(BY_NUMBER, {"n": data["number"]}))["personaByNumber"]
    assert by_number["id"] == persona.gid
    node = (await owner_client.data(NODE, {"id": persona.gid}))["node"]
    assert node == {"id": persona.gid, "number": data["number"]}


def test_node_fetches_every_type_that_implements_node() -> None:
    # Given the types of the served graph that implement Node
    implementing = set(re.findall(r"^type (\w+) implements Node\b", served.as_str(), re.MULTILINE))
    # Then node(id:) knows each: the viewer's Organization, and a table and a from_row for every other
    assert implementing == {"Organization", *NODE_TABLES}
    for name in NODE_TABLES:
        assert callable(node_type(served, name))


@pytest.mark.parametrize("bad_id", ["not-an-id", "%%%", "UGVyc29uYTp4eXo"])
async def test_malformed_ids_are_bad_user_input(owner_client: GraphQLClient, bad_id: str) -> None:
    body = await owner_client.execute(PERSONA_HEADER, {"id": bad_id})
    assert body["data"] == {"persona": None}
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["path"] == ["persona"]


async def test_another_organizations_persona_does_not_exist(
    client_for: ClientFactory, db: object, org: Organization, other_org: Organization
) -> None:
    theirs = await make_persona(db, other_org, first_name="Zed", phone="+14155550199")
    mine = await client_for(Role.OWNER)
    for query, variables in (
        (PERSONA_HEADER, {"id": theirs.gid}),
        (NODE, {"id": theirs.gid}),
        (BY_NUMBER, {"n": theirs.number}),
    ):
        body = await mine.execute(query, variables)
        assert next(iter(body["data"].values())) is None
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    listed = (await mine.data(PERSONAS, {"first": 100}))["personas"]
    assert listed["totalCount"] == 0


async def test_personas_pages_forward_and_back_without_gaps(
    owner_client: GraphQLClient, db: object, org: Organization
) -> None:
    made = [await make_persona(db, org, phone=f"+1415555{n:04d}") for n in range(7)]
    numbers = sorted((p.number for p in made), reverse=True)

    seen: list[int] = []
    after = None
    while True:
        page = (await owner_client.data(PERSONAS, {"first": 3, "after": after}))["personas"]
        assert page["totalCount"] == 7
        seen += [n["number"] for n in page["nodes"]]
        assert [e["node"]["number"] for e in page["edges"]] == [n["number"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == numbers

    back: list[int] = []
    before = None
    while True:
        page = (await owner_client.data(PERSONAS, {"last": 2, "before": before}))["personas"]
        back = [n["number"] for n in page["nodes"]] + back
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert back == numbers


@pytest.mark.parametrize(
    "variables",
    [{"first": 101}, {"first": -1}, {"first": 2, "last": 2}, {"first": 2, "after": "garbage!"}],
)
async def test_bad_page_arguments_are_bad_user_input(owner_client: GraphQLClient, variables: dict[str, object]) -> None:
    body = await owner_client.execute(PERSONAS, variables)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
