"""Differential test: FastMutations (schema/fast_mutations.py) answers ingestContacts and
recordOrders exactly as graphql-core does.

Two apps over the same database, each writing into its own organization: the
reference with `fast_execution` off (graphql-core coerces the variables, runs the
resolver and completes the payload), the fast one with it on and FastMutations in
the schema's extensions, just before FastExecution. The same
sequence of batches goes to both: new, known, repeated, merging and rejected rows,
bad ids, replays, referrals, aliases, __typename, resolver fields in the payload,
and variables that do not coerce (which the fast path hands to graphql-core
before anything runs). Status and body must be the same once each organization's
global ids are replaced by their order of appearance.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse
from graphql.execution import values

from app import create_app
from database import Database
from models import Organization
from permissions.keys import issue_key
from permissions.matrix import Role, permissions_of
from schema import schema
from schema.cost import QueryCost
from schema.fast_exec import FastExecution
from schema.fast_mutations import FastMutations, compile_mutation
from settings import Settings
from tests.test_ingest_batch import ANN_EMAIL, ANN_PHONE, BEA_EMAIL, BEA_PHONE, CAL_PHONE, ticket

INGEST = """
mutation Ingest($input: IngestContactsInput!) {
  ingestContacts(input: $input) {
    __typename
    results { index outcome persona { id number firstName fullName } userErrors { field message code } }
    userErrors { field message code }
  }
}
"""
INGEST_ALIASED = """
mutation ($rows: IngestContactsInput!) {
  done: ingestContacts(input: $rows) { results { i: index outcome who: persona { __typename id } } }
}
"""
INGEST_FRAGMENTS = """
mutation ($input: IngestContactsInput!) { ingestContacts(input: $input) { ...Payload } }
fragment Payload on IngestContactsPayload { results { ...Row persona { ... on Node { id } } } }
fragment Row on IngestResult { index outcome userErrors { code } }
"""
RECORD = """
mutation ($input: RecordOrdersInput!) {
  recordOrders(input: $input) {
    results {
      index outcome
      order { id externalId placedAt subtotal total itemCount pointsEarned }
      persona { id number loyaltyMember }
      userErrors { field message code }
    }
    userErrors { field message code }
  }
}
"""
# What the compiled plan does not take: graphql-core answers these whole.
NOT_COMPILED = [
    'mutation { ingestContacts(input: {source: "pos", contacts: []}) { userErrors { code } } }',
    "mutation ($input: IngestContactsInput) { ingestContacts(input: $input) { userErrors { code } } }",
    "mutation ($input: IngestContactsInput!) {"
    " ingestContacts(input: $input) @skip(if: false) { userErrors { code } } }",
    "mutation ($a: IngestContactsInput!, $b: IngestContactsInput!) {"
    " a: ingestContacts(input: $a) { userErrors { code } } b: ingestContacts(input: $b) { userErrors { code } } }",
    "mutation ($input: IngestContactsInput!) { ...M }"
    " fragment M on Mutation { ingestContacts(input: $input) { __typename } }",
    'mutation ($input: IngestContactsInput! = {source: "pos", contacts: []}) {'
    " ingestContacts(input: $input) { __typename } }",
]
GLOBAL_ID = re.compile(r'"([A-Za-z0-9_\-]{20,}={0,2})"')


def contacts_batches() -> list[dict[str, Any]]:
    """Variables of ingestContacts, in order: each batch sees what the ones before it wrote."""
    ann = {"phone": ANN_PHONE, "firstName": "Ann", "tags": ["vip"], "attributes": [{"key": "tier", "value": "s"}]}
    return [
        {
            "source": "acme-pos",
            "contacts": [
                ann,
                {"phone": "415.867.5309", "email": ANN_EMAIL, "lastName": "Lee", "loyaltyMember": True},
                {
                    "email": BEA_EMAIL,
                    "birthday": "1990-02-03",
                    "consents": [
                        {"channel": "EMAIL", "status": "OPTED_IN", "source": "INTEGRATION"},
                        {"channel": "TEXT", "status": "OPTED_OUT", "source": "INTEGRATION"},
                    ],
                },
                {"phone": "not a phone"},
                {"firstName": "Nobody"},
                {"phone": CAL_PHONE, "favoriteStoreId": "bm9wZQ=="},
                {"phone": "+14155550100", "sourceId": "c-1", "legacyPoints": 40, "loyaltySignupAt": None},
            ],
        },
        # Known again, and a row whose keys belong to two personas (a merge).
        {"source": "acme-pos", "contacts": [ann, {"phone": ANN_PHONE, "email": BEA_EMAIL}, {"phone": BEA_PHONE}]},
        {"source": "RAW_FILE", "contacts": []},
        {"source": "", "contacts": [{"phone": CAL_PHONE}]},
    ]


def orders_batches() -> list[dict[str, Any]]:
    first = ticket("t-1", {"phone": ANN_PHONE})
    return [
        {
            "orders": [
                first,
                ticket("t-2", {"phone": "+14155550177", "loyaltyMember": True}, subtotal="50.00"),
                ticket("t-3", {"phone": "nope"}),
                ticket("t-4", {"email": BEA_EMAIL}, storeId="bm9wZQ=="),
                ticket("t-5", {"phone": CAL_PHONE}, referredByNumber=1),
                ticket("t-6", {"phone": "+14155550178"}, referredByNumber=999),
                first,
            ]
        },
        {"orders": [first, ticket("t-7", {"phone": ANN_PHONE, "email": BEA_EMAIL})]},
    ]


# Variables that do not coerce: graphql-core's errors, from either app.
BAD_VARIABLES: list[tuple[str, dict[str, Any]]] = [
    (INGEST, {"input": {"source": "pos", "contacts": [{"phone": "+14155550100", "shoeSize": 9}]}}),
    (INGEST, {"input": {"contacts": []}}),
    (INGEST, {"input": {"source": "pos", "contacts": [{"phone": 4155550100}]}}),
    (INGEST, {"input": {"source": "pos", "contacts": [{"consents": [{"channel": "FAX"}]}]}}),
    (INGEST, {"input": {"source": "pos", "contacts": None}}),
    (INGEST, {"input": {"source": "pos", "contacts": {"phone": "+14155550100"}}}),
    (INGEST, {"input": {"source": "pos", "contacts": [{"tags": "vip", "phone": "+14155550100"}]}}),
    (INGEST, {}),
    (INGEST, {"input": "everything"}),
    (RECORD, {"input": {"orders": [{**ticket("t-9", {"phone": ANN_PHONE}), "subtotal": "lots"}]}}),
    (RECORD, {"input": {"orders": [{**ticket("t-9", {"phone": ANN_PHONE}), "placedAt": "yesterday"}]}}),
]


def test_fast_mutations_run_inside_the_cost_check_just_before_fast_execution() -> None:
    # The cost is charged (QueryCost) before either answers; each hands on what it does not take.
    extensions = list(schema.extensions)
    assert extensions.index(FastMutations) == extensions.index(FastExecution) - 1
    assert extensions.index(QueryCost) < extensions.index(FastMutations)


@dataclasses.dataclass
class Side:
    http: httpx.AsyncClient
    ids: dict[str, str] = dataclasses.field(default_factory=dict)

    async def send(self, document: str, variables: dict[str, Any]) -> tuple[int, str]:
        response = await self.http.post("/graphql", json={"query": document, "variables": variables})
        return response.status_code, self.normalise(response.text)

    def normalise(self, body: str) -> str:
        """Global ids (random per organization) by order of appearance; error ids and the cost bucket's
        level (it refills with time) too."""
        body = re.sub(r'"errorId":"[0-9a-f]+"', '"errorId":"-"', body)
        body = re.sub(r'"currentlyAvailable":\d+', '"currentlyAvailable":0', body)
        return GLOBAL_ID.sub(lambda m: f'"id-{self.ids.setdefault(m.group(1), str(len(self.ids)))}"', body)


@pytest.fixture
async def sides(
    db: Database, settings: Settings, org: Organization, other_org: Organization
) -> AsyncIterator[tuple[Side, Side]]:
    opened = []
    made = []
    for given, fast in ((org, False), (other_org, True)):
        async with db.session() as session, session.begin():
            organization = await session.merge(given)
            organization.points_per_order = 5
            organization.referral_points_enabled = True
            organization.referral_points = 25
            issued = await issue_key(session, org_id=organization.id, role=Role.OPERATOR, name="parity")
        app = create_app(dataclasses.replace(settings, fast_execution=fast), database=db)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {issued.plaintext}"},
        )
        opened.append(http)
        made.append(Side(http))
    yield made[0], made[1]
    for http in opened:
        await http.aclose()


async def test_batches_answer_alike_with_and_without_the_compiled_mutations(sides: tuple[Side, Side]) -> None:
    reference, fast = sides
    sent = [(INGEST, {"input": v}) for v in contacts_batches()]
    sent += [(INGEST_ALIASED, {"rows": contacts_batches()[1]})]
    sent += [(INGEST_FRAGMENTS, {"input": contacts_batches()[0]})]
    sent += [(RECORD, {"input": v}) for v in orders_batches()]
    sent += [(RECORD, {"input": orders_batches()[0]})]  # every ticket replayed
    sent += BAD_VARIABLES
    for document, variables in sent:
        expected = await reference.send(document, variables)
        answered = await fast.send(document, variables)
        assert answered == expected, "\n".join(difflib.unified_diff(_lines(expected), _lines(answered), lineterm=""))
    assert len(reference.ids) > 5


def _lines(answer: tuple[int, str]) -> list[str]:
    status, body = answer
    return [str(status), *json.dumps(json.loads(body), indent=1).splitlines()]


def test_the_batch_documents_compile_and_others_are_left_to_graphql_core() -> None:
    operator = permissions_of(Role.OPERATOR)
    for document in (INGEST, INGEST_ALIASED, INGEST_FRAGMENTS, RECORD):
        assert compile_mutation(schema._schema, parse(document), None, operator) is not None, document
    for document in NOT_COMPILED:
        assert compile_mutation(schema._schema, parse(document), None, operator) is None, document


async def test_the_fast_side_leaves_graphql_core_out_of_a_valid_batch(
    sides: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, fast = sides
    coerced: list[str] = []
    original = values.coerce_variable_values

    def counted(*args: Any, **kwargs: Any) -> Any:
        coerced.append("graphql-core")
        return original(*args, **kwargs)

    monkeypatch.setattr(values, "coerce_variable_values", counted)
    batch = {"input": contacts_batches()[0]}

    assert (await fast.send(INGEST, batch))[0] == 200
    assert coerced == []
    assert (await reference.send(INGEST, batch))[0] == 200
    assert coerced == ["graphql-core"]
