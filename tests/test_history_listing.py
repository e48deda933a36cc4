"""The History tab's lists: each history connection and the timeline hold the
persona's rows newest first, with their counts, every node's fields and related
records, and the merge a merged-away persona was taken by.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import update
from sqlmodel import col

from database import Database
from models import Organization, Persona, Store
from models.enums import MergeKind
from resolvers.ingest import ContactData
from resolvers.merges import merge_personas
from resolvers.orders import LineData, OrderData, OrderOutcome, record_order
from tests.conftest import GraphQLClient
from tests.factories import days_ago, make_persona
from tests.history_support import (
    ANN_PHONE,
    BEA_PHONE,
    EVERY_CONNECTION,
    FIELDS,
    TIMELINE_PAGE,
    TYPENAMES,
    given_history,
)

NODE_DETAILS = """
query ($id: ID!) {
  persona(id: $id) {
    history {
      points {
        nodes {
          kind delta balanceAfter note actor createdAt
          order { externalId }
          redemption { discountName points status discount { name pointsCost } }
        }
      }
      orders {
        nodes {
          externalId placedAt subtotal tax total itemCount pointsEarned
          store { name }
          lines { product brand category quantity unitPrice }
        }
      }
      messages { nodes { direction channel body campaign sentAt } }
      redemptions { nodes { discountName points status redeemedAt actor discount { name pointsCost } } }
      merges { nodes { kind mergedNumber reason actor mergedAt undoneAt survivor { number } } }
      surveys { nodes { surveyName status submittedAt answers { question answer } } }
      actions { nodes { kind campaign detail occurredAt } }
      pixelEvents { nodes { site event url occurredAt } }
    }
  }
}
"""
MERGED_AWAY = (
    "query ($id: ID!) { persona(id: $id) { history { merges { totalCount nodes { survivor { number } } } } } }"
)


async def test_each_connection_lists_the_personas_rows_newest_first_with_total_count(
    db: Database, org: Organization, other_org: Organization, owner_client: GraphQLClient
) -> None:
    # Given a persona with three rows of every kind, days apart, and a neighbour with history of its own
    ann = await given_history(db, org, ANN_PHONE, first_name="Ann")
    neighbour = await given_history(db, org, BEA_PHONE)
    stranger = await given_history(db, other_org, ANN_PHONE)
    for days in (9, 6, 3):
        for name in FIELDS:
            await ann.add(name, days_ago(days))
            await neighbour.add(name, days_ago(days + 0.5))
            await stranger.add(name, days_ago(days + 0.25))

    # When the owner opens the History tab
    history = (await owner_client.data(EVERY_CONNECTION, {"id": ann.persona.gid}))["persona"]["history"]

    # Then each connection holds exactly Ann's rows, newest first, and counts them
    for name in FIELDS:
        expected = ann.newest_first(name)
        assert [n["id"] for n in history[name]["nodes"]] == expected, name
        assert history[name]["totalCount"] == len(expected), name
    assert history["points"]["totalCount"] == 1 + 3 + 3  # the opening grant, 3 grants, 3 redemptions
    assert history["merges"]["totalCount"] == 3


async def test_the_timeline_merges_every_kind_newest_first_and_filters_by_kind(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given two rows of every kind
    ann = await given_history(db, org, ANN_PHONE)
    for days in (8, 2):
        for name in FIELDS:
            await ann.add(name, days_ago(days))

    # When the timeline is read whole, and filtered to orders and messages
    everything = await owner_client.data(TIMELINE_PAGE, {"id": ann.persona.gid, "first": 100})
    some = await owner_client.data(TIMELINE_PAGE, {"id": ann.persona.gid, "first": 100, "kinds": ["ORDER", "MESSAGE"]})
    none = await owner_client.data(TIMELINE_PAGE, {"id": ann.persona.gid, "kinds": []})

    # Then it holds every row once, newest first across the tables, each as its own type
    edges = everything["persona"]["timeline"]["edges"]
    assert [e["node"]["id"] for e in edges] == ann.newest_first()
    kinds_by_id = {m.gid: TYPENAMES[name] for name in FIELDS for m in ann.made[name]}
    assert all(e["node"]["__typename"] == kinds_by_id[e["node"]["id"]] for e in edges)
    assert [e["node"]["id"] for e in some["persona"]["timeline"]["edges"]] == ann.newest_first("orders", "messages")
    assert none["persona"]["timeline"]["edges"] == []


async def test_history_nodes_show_their_fields_and_related_records(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given a loyalty member (1 point per dollar, 5 per visit) with one of everything, bought at a store
    async with db.session() as session, session.begin():
        await session.execute(update(Organization).where(col(Organization.id) == org.id).values(points_per_order=5))
        store = Store(org_id=org.id, name="Mission St")
        session.add(store)
    ann = await given_history(db, org, ANN_PHONE, first_name="Ann", loyalty_member=True)
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        lines = [
            LineData(
                product="Camino Gummies", quantity=2, unit_price=Decimal("20.00"), brand="Kiva", category="Edibles"
            ),
            LineData(product="Blue Dream 3.5g", quantity=1, unit_price=Decimal("35.50")),
        ]
        data = OrderData(
            external_id="T-100",
            source="test-pos",
            customer=ContactData(phone=ANN_PHONE),
            placed_at=days_ago(3),
            subtotal=Decimal("75.50"),
            tax=Decimal("7.55"),
            total=Decimal("83.05"),
            lines=lines,
            store_id=store.id,
        )
        result = await record_order(session, loaded, data, actor="pos", path=["order"])
        assert result.outcome is OrderOutcome.RECORDED
    for name in ("redemptions", "merges", "messages", "surveys", "actions", "pixelEvents"):
        await ann.add(name, days_ago(2))

    # When the owner reads every node's fields
    history = (await owner_client.data(NODE_DETAILS, {"id": ann.persona.gid}))["persona"]["history"]

    # Then the order shows its store, its lines in ticket order, exact money and what it earned
    (order,) = history["orders"]["nodes"]
    assert order["store"] == {"name": "Mission St"}
    assert order["lines"] == [
        {"product": "Camino Gummies", "brand": "Kiva", "category": "Edibles", "quantity": 2, "unitPrice": "20.00"},
        {"product": "Blue Dream 3.5g", "brand": None, "category": None, "quantity": 1, "unitPrice": "35.50"},
    ]
    assert (order["subtotal"], order["tax"], order["total"], order["itemCount"]) == ("75.50", "7.55", "83.05", 3)
    assert order["pointsEarned"] == 75 + 5
    # ... and the ledger entries it earned point back at it
    from_order = [p for p in history["points"]["nodes"] if p["order"] is not None]
    assert sorted((p["kind"], p["delta"]) for p in from_order) == [("ORDER", 75), ("VISIT", 5)]
    assert {p["order"]["externalId"] for p in from_order} == {"T-100"}
    # ... the redemption entry points at its redemption and discount
    (spent,) = [p for p in history["points"]["nodes"] if p["kind"] == "REDEMPTION"]
    assert spent["delta"] == -10
    assert spent["redemption"] == {
        "discountName": "$5 off",
        "points": 10,
        "status": "REDEEMED",
        "discount": {"name": "$5 off", "pointsCost": 10},
    }
    balances = [p["balanceAfter"] for p in reversed(history["points"]["nodes"])]
    assert balances[-1] == 10_000 + 80 - 10
    (redemption,) = history["redemptions"]["nodes"]
    assert redemption["actor"] == "test"
    # ... the merge names the survivor, and the merged-away persona sees it too
    (merge,) = history["merges"]["nodes"]
    assert merge["kind"] == "MANUAL"
    assert merge["survivor"] == {"number": ann.persona.number}
    assert merge["undoneAt"] is None
    (message,) = history["messages"]["nodes"]
    assert (message["direction"], message["channel"], message["campaign"]) == ("OUTBOUND", "SMS", "Spring")
    (survey,) = history["surveys"]["nodes"]
    assert survey["status"] == "PARTIAL"
    assert survey["answers"] == [{"question": "How likely?", "answer": "9"}, {"question": "Why?", "answer": None}]
    (action,) = history["actions"]["nodes"]
    assert (action["kind"], action["campaign"]) == ("CLICKED", "Spring")
    (pixel,) = history["pixelEvents"]["nodes"]
    assert (pixel["site"], pixel["event"]) == ("shop.example.com", "page_view")


async def test_a_merged_away_persona_lists_the_merge_that_took_it(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given Ann survives a merge with Bea
    ann = await given_history(db, org, ANN_PHONE)
    bea = await make_persona(db, org, phone=BEA_PHONE)
    async with db.session() as session, session.begin():
        survivor = await session.get(Persona, (org.id, ann.persona.id))
        merged = await session.get(Persona, (org.id, bea.id))
        assert survivor is not None
        assert merged is not None
        await merge_personas(
            session, org_id=org.id, survivor=survivor, merged=merged, kind=MergeKind.MANUAL, reason=None, actor="x"
        )

    # When Bea's card is opened
    history = (await owner_client.data(MERGED_AWAY, {"id": bea.gid}))["persona"]["history"]

    # Then her merges list the merge into Ann
    assert history["merges"] == {"totalCount": 1, "nodes": [{"survivor": {"number": ann.persona.number}}]}
