"""What the History tab costs: an orders page and the History tab's operation
document (operations/history.graphql) take as many statements for many rows as
for few, and the document is valid against the schema.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphql import parse, validate

from database import Database
from models import Organization, Store
from schema import schema
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, days_ago
from tests.history_support import ANN_PHONE, BEA_PHONE, FIELDS, given_history

HISTORY_OPERATION = Path(__file__).parent.parent / "operations" / "history.graphql"

ORDERS_WITH_RELATIONS = """
query ($id: ID!) {
  persona(id: $id) {
    history { orders(first: 20) { nodes { lines { product } pointsEarned store { name } } } }
  }
}
"""


async def test_an_orders_page_uses_as_many_statements_for_60_orders_as_for_3(
    db: Database, org: Organization, owner_client: GraphQLClient, statements: Any
) -> None:
    # Given one loyalty member with 3 orders and another with 60, all at a store
    async with db.session() as session, session.begin():
        session.add(Store(org_id=org.id, name="Mission St"))
    few = await given_history(db, org, ANN_PHONE, loyalty_member=True)
    many = await given_history(db, org, BEA_PHONE, loyalty_member=True)
    for n in range(3):
        await few.add("orders", days_ago(n + 1))
    for n in range(60):
        await many.add("orders", days_ago(n + 1))

    async def count(persona: MadePersona) -> int:
        statements.count, statements.active = 0, True
        data = await owner_client.data(ORDERS_WITH_RELATIONS, {"id": persona.gid})
        statements.active = False
        assert all(o["pointsEarned"] == 25 and o["lines"] for o in data["persona"]["history"]["orders"]["nodes"])
        return int(statements.count)

    # When each one's orders page is read with lines, points earned and store
    await count(few.persona)  # the key's first use also records when it was used
    few_statements, many_statements = await count(few.persona), await count(many.persona)

    # Then both take the same number of statements
    assert few_statements == many_statements


def test_the_history_operation_document_is_valid_against_the_schema() -> None:
    document = parse(HISTORY_OPERATION.read_text())
    assert validate(schema._schema, document) == []


async def test_the_history_operation_renders_the_tab_in_constant_statements(
    db: Database, org: Organization, owner_client: GraphQLClient, statements: Any
) -> None:
    # Given one persona with 2 rows of every kind and another with 21, arriving in rounds
    few = await given_history(db, org, ANN_PHONE, loyalty_member=True)
    many = await given_history(db, org, BEA_PHONE, loyalty_member=True)
    for history, rounds in ((few, 2), (many, 21)):
        for _ in range(rounds):
            for name in FIELDS:
                await history.add(name)
    operation = HISTORY_OPERATION.read_text()

    async def run(persona: MadePersona) -> tuple[int, dict[str, Any]]:
        statements.count, statements.active = 0, True
        data = await owner_client.data(operation, {"id": persona.gid})
        statements.active = False
        return int(statements.count), data

    # When the History tab document runs for each
    await run(few.persona)  # the key's first use also records when it was used
    few_statements, few_data = await run(few.persona)
    many_statements, many_data = await run(many.persona)

    # Then every connection renders its first page, and the statement count does not grow
    for name in FIELDS:
        assert few_data["persona"]["history"][name]["totalCount"] >= 2
        assert len(many_data["persona"]["history"][name]["edges"]) == 20
    assert len(many_data["persona"]["timeline"]["edges"]) == 20
    assert many_statements == few_statements
