"""History nodes built as JSON by PostgreSQL (resolvers/history_json.py) answer exactly
what the schema's types answer from rows.

The card's history is read through the compiled path (which builds the nodes in SQL on
PostgreSQL) and through graphql-core (which builds them from rows), over data with the
edge cases of each form, and the two bodies must be the same bytes: for plain pages,
aliases and typenames, Relay's forms, and selections one list of nodes cannot answer
(read as rows). The leaf forms alone, for any value, are tests/test_history_json_leaf_forms.py."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from app import create_app
from database import Database
from models import (
    Discount,
    Message,
    Order,
    OrderLine,
    Organization,
    PersonaAction,
    PixelEvent,
    PointsEntry,
    Store,
    SurveySubmission,
)
from models import Redemption as RedemptionRow
from permissions.keys import issue_key
from permissions.matrix import Role
from settings import Settings
from tests.factories import make_persona

HISTORY = """
query History($id: ID!, $first: Int, $last: Int) {
  persona(id: $id) {
    history {
      points(first: $first, last: $last) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        nodes {
          __typename id kind delta balanceAfter note actor createdAt
          order { id externalId total store { name } }
          redemption { id discountName points status redeemedAt actor }
        }
      }
      orders(first: $first, last: $last) {
        totalCount
        nodes {
          id externalId placedAt subtotal tax total itemCount pointsEarned
          store { __typename id name }
          lines { product brand category quantity unitPrice }
        }
      }
      messages(first: $first, last: $last) { nodes { id direction channel body campaign sentAt } }
      redemptions(first: $first, last: $last) { nodes { id discountName points status redeemedAt actor } }
      surveys(first: $first, last: $last) { nodes { id surveyName status submittedAt answers { question answer } } }
      actions(first: $first, last: $last) { nodes { id kind campaign detail occurredAt } }
      pixelEvents(first: $first, last: $last) { nodes { id site event url occurredAt } }
    }
  }
}
"""

ALIASED = """
query Aliased($id: ID!) {
  persona(id: $id) {
    history {
      orders(first: 3) { nodes { ticket: externalId when: placedAt lines { sku: product each: unitPrice } } }
      messages(first: 2) { all: nodes { text: body, kind: __typename } }
    }
  }
}
"""

# Relay's forms: edges with cursors, fragments (named, inline, on the Node interface), nodes
# and edges both: the JSON path takes each.
RELAY_FORMS = {
    "edges": """
        query($id: ID!) {
          persona(id: $id) {
            history {
              orders(first: 3) { edges { __typename cursor node { id total } } pageInfo { endCursor } }
              points(last: 2) { edges { node { kind delta order { externalId } } c: cursor } }
            }
          }
        }""",
    "fragments": """
        query($id: ID!) {
          persona(id: $id) {
            history {
              orders(first: 3) { ...Orders }
              surveys(first: 2) { nodes { ... on SurveySubmission { surveyName } ...Id answers { ...A } } }
            }
          }
        }
        fragment Orders on OrderConnection { totalCount edges { node { ...O } } }
        fragment O on Order { id ... on Node { id } lines { ... on OrderLine { product } } store { ...S } }
        fragment S on Store { name }
        fragment Id on Node { id }
        fragment A on SurveyAnswer { question answer }""",
    "nodes-and-edges": """
        query($id: ID!) {
          persona(id: $id) { history { messages(first: 2) { nodes { id body } edges { cursor node { id body } } } } }
        }""",
}

# Selections one list of nodes cannot answer: each is read as rows, as before.
FROM_ROWS = {
    "nodes-twice": """
        query($id: ID!) { persona(id: $id) { history { orders(first: 2) { a: nodes { id } b: nodes { total } } } } }""",
    "nodes-and-edges-differ": """
        query($id: ID!) {
          persona(id: $id) { history { orders(first: 2) { nodes { id } edges { node { total } } } } }
        }""",
    "directive": """
        query($id: ID!) {
          persona(id: $id) { history { orders(first: 2) { nodes { id total @skip(if: false) } } } }
        }""",
}

ODD_TEXT = 'Tab\there, "quotes", back\\slash, newline\nand ünïcødé 🌿 \u0001 </script>'


async def _history(db: Database, org: Organization, persona_id: uuid.UUID) -> None:
    """Rows of every kind with the edge cases of each form: times with and without
    microseconds, amounts of 0 and of whole dollars, null optional columns, JSON-hostile
    text, an order with and one without a store, a survey answer left out."""
    whole = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
    fine = dt.datetime(2026, 3, 2, 8, 30, 15, 5, tzinfo=dt.UTC)
    async with db.session() as session, session.begin():
        store = Store(org_id=org.id, name=ODD_TEXT)
        discount = Discount(org_id=org.id, name="$5 off", points_cost=100)
        session.add_all([store, discount])
        await session.flush()
        orders = [
            Order(
                org_id=org.id,
                persona_id=persona_id,
                source="pos",
                external_id=f"T-{n}",
                store_id=store.id if n % 2 else None,
                placed_at=(whole, fine)[n % 2] + dt.timedelta(days=n),
                subtotal_cents=(0, 100, 123456789)[n % 3],
                tax_cents=n,
                total_cents=(0, 100, 123456789)[n % 3] + n,
                item_count=n + 1,
            )
            for n in range(4)
        ]
        session.add_all(orders)
        await session.flush()
        session.add_all(
            OrderLine(
                org_id=org.id,
                order_id=order.id,
                line_no=line,
                product=f"{ODD_TEXT} {line}",
                brand=None if line else "Kiva",
                category="Edibles" if line else None,
                quantity=line + 1,
                unit_price_cents=(5, 2000)[line],
            )
            for order in orders[1:]
            for line in range(2)
        )
        redemption = RedemptionRow(
            org_id=org.id,
            persona_id=persona_id,
            discount_id=discount.id,
            discount_name=ODD_TEXT,
            points=100,
            status="REDEEMED",
            redeemed_at=fine,
        )
        session.add(redemption)
        await session.flush()
        mine: dict[str, Any] = {"org_id": org.id, "persona_id": persona_id}
        session.add_all(
            [
                PointsEntry(
                    **mine,
                    kind="ORDER",
                    delta=150,
                    balance_after=150,
                    order_id=orders[1].id,
                    created_at=fine,
                ),
                PointsEntry(
                    **mine,
                    kind="VISIT",
                    delta=5,
                    balance_after=155,
                    order_id=orders[1].id,
                    created_at=whole + dt.timedelta(days=2),
                ),
                PointsEntry(
                    **mine,
                    kind="REDEMPTION",
                    delta=-100,
                    balance_after=55,
                    redemption_id=redemption.id,
                    actor=ODD_TEXT,
                    note=ODD_TEXT,
                    created_at=whole + dt.timedelta(days=3),
                ),
                Message(
                    **mine,
                    source="crm",
                    external_id="m1",
                    direction="INBOUND",
                    channel="SMS",
                    body=ODD_TEXT,
                    sent_at=whole,
                ),
                Message(
                    **mine,
                    source="crm",
                    external_id="m2",
                    direction="OUTBOUND",
                    channel="EMAIL",
                    body="",
                    campaign="Spring",
                    sent_at=fine,
                ),
                SurveySubmission(
                    **mine,
                    source="crm",
                    external_id="s1",
                    survey_name="NPS",
                    status="PARTIAL",
                    answers=[{"question": "How likely?", "answer": "9"}, {"question": ODD_TEXT}, {"question": "Why?"}],
                    submitted_at=fine,
                ),
                SurveySubmission(
                    **mine,
                    source="crm",
                    external_id="s2",
                    survey_name="Empty",
                    status="COMPLETE",
                    answers=[],
                    submitted_at=whole,
                ),
                PersonaAction(
                    **mine,
                    source="crm",
                    external_id="a1",
                    kind="CLICKED",
                    detail=ODD_TEXT,
                    occurred_at=fine,
                ),
                PixelEvent(**mine, source="pixel", site="shop", event="view", occurred_at=whole),
            ]
        )


def _data(body: str) -> str:
    """The body up to its extensions (each app charges the key's cost bucket of its own)."""
    return body.split(',"extensions":', 1)[0]


@pytest.fixture
async def answers_both_ways(db: Database, settings: Settings, org: Organization) -> AsyncIterator[Any]:
    """(document, variables) -> the compiled app's body, graphql-core's body, and whether
    the compiled one sent a statement that builds JSON nodes."""
    persona = await make_persona(db, org, phone="(415) 555-0134")
    await _history(db, org, persona.id)
    async with db.session() as session, session.begin():
        key = (await issue_key(session, org_id=org.id, role=Role.OWNER, name="json")).plaintext
    reference = Database(db.engine, coalesce_reads=False)
    apps = {
        "compiled": create_app(settings, database=db),
        "reference": create_app(replace(settings, fast_execution=False, coalesce_reads=False), database=reference),
    }
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers={"Authorization": f"Bearer {key}"}
        )
        for name, app in apps.items()
    }
    built: list[str] = []

    def seen(*args: Any) -> None:
        if "json_build_object" in args[2]:
            built.append(args[2])

    async def ask(document: str, variables: dict[str, Any] | None = None) -> tuple[str, str, bool]:
        payload = {"query": document, "variables": {"id": persona.gid, **(variables or {})}}
        built.clear()
        event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            compiled = await clients["compiled"].post("/graphql", json=payload)
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
        in_sql = bool(built)
        answered = await clients["reference"].post("/graphql", json=payload)
        assert compiled.status_code == answered.status_code == 200, compiled.text
        assert "errors" not in compiled.json(), compiled.text
        return _data(compiled.text), _data(answered.text), in_sql

    yield ask
    for client in clients.values():
        await client.aclose()


@pytest.mark.parametrize(
    "variables",
    [{}, {"first": 1}, {"first": 2}, {"last": 2}, {"first": 0}],
    ids=["default", "first-1", "first-2", "last-2", "first-0"],
)
async def test_history_nodes_answer_the_same_bytes_both_ways(
    db: Database, answers_both_ways: Any, variables: dict[str, Any]
) -> None:
    # Given a persona whose history has every kind with the edge cases of each form
    # When its history is read through the compiled path and through graphql-core
    compiled, reference, in_sql = await answers_both_ways(HISTORY, variables)

    # Then the bodies are the same bytes, and on PostgreSQL the nodes were built in SQL
    assert compiled == reference
    assert in_sql is not db.is_sqlite


async def test_aliases_and_typenames_answer_the_same_bytes_both_ways(db: Database, answers_both_ways: Any) -> None:
    compiled, reference, in_sql = await answers_both_ways(ALIASED)
    assert compiled == reference
    assert in_sql is not db.is_sqlite
    assert '"text":"Tab\\there' in compiled


@pytest.mark.parametrize("name", list(RELAY_FORMS))
async def test_relay_forms_answer_the_same_bytes_both_ways(db: Database, answers_both_ways: Any, name: str) -> None:
    # Given a selection in one of Relay's forms (edges and cursors, fragments)
    compiled, reference, in_sql = await answers_both_ways(RELAY_FORMS[name])

    # Then the nodes are built in SQL on PostgreSQL, and the answer is the same bytes
    assert compiled == reference
    assert in_sql is not db.is_sqlite


@pytest.mark.parametrize("name", list(FROM_ROWS))
async def test_selections_without_a_json_form_are_read_as_rows(answers_both_ways: Any, name: str) -> None:
    # Given a selection one list of nodes cannot answer (two keys, two selections, a directive)
    compiled, reference, in_sql = await answers_both_ways(FROM_ROWS[name])

    # Then the page is read as rows and answers the same
    assert compiled == reference
    assert not in_sql
