"""Ingestion throughput through the GraphQL mutations: contacts/s and orders/s.

    .venv/bin/python -m bench.ingest_throughput [--contacts N] [--orders N] [--batch 500]

Starts a throwaway PostgreSQL (tests/pgcluster.py; or PERSONAGRAPH_TEST_POSTGRES_URL),
migrates it, and sends ingestContacts / recordOrders batches through the ASGI app
with an OPERATOR key, as an integration would. Prints rows per second for:
new contacts, known contacts (a replay of the same rows), orders of known
customers (loyalty members: accrual, rollups and purchase counts), and replayed
orders (DUPLICATE). Rows per second are over the time of the requests only; the
tables are analyzed before each batch (--no-analyze to see them planned as empty).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import httpx
from sqlalchemy import text

from app import create_app
from cli import migrate
from database import Database, create_engine
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.organizations import create_organization
from settings import Settings
from tests.pgcluster import running_postgres

INGEST = """
mutation ($input: IngestContactsInput!) {
  ingestContacts(input: $input) {
    results { index outcome persona { id number } userErrors { code } }
    userErrors { code }
  }
}
"""
ORDERS = """
mutation ($input: RecordOrdersInput!) {
  recordOrders(input: $input) {
    results { index outcome order { id } persona { id } userErrors { code } }
    userErrors { code }
  }
}
"""
PRODUCTS = [
    ("Blue Dream 3.5g", "Stiiizy", "Flower", "35.00"),
    ("Camino Gummies", "Kiva", "Edibles", "20.00"),
    ("Live Resin Cart", "Raw Garden", "Vapes", "38.00"),
    ("Baby Jeeter 5pk", "Jeeter", "Pre-Rolls", "30.00"),
]


def phone(i: int) -> str:
    return f"+1415{2000000 + i:07d}"


def contact(i: int) -> dict[str, Any]:
    return {
        "sourceId": f"c-{i}",
        "firstName": f"First{i}",
        "lastName": f"Last{i}",
        "phone": phone(i),
        "email": f"customer{i}@example.com",
        "loyaltyMember": True,
        "attributes": [{"key": "budtender", "value": "Sam"}],
        "tags": ["vip"],
        "consents": [
            {"channel": "TEXT", "status": "OPTED_IN", "source": "INTEGRATION"},
            {"channel": "EMAIL", "status": "OPTED_IN", "source": "INTEGRATION"},
        ],
    }


def order(n: int, customer: int, rng: random.Random) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [
        {"product": p, "brand": b, "category": c, "quantity": rng.choice([1, 2]), "unitPrice": price}
        for p, b, c, price in rng.sample(PRODUCTS, k=rng.choice([1, 2, 3]))
    ]
    subtotal = sum(float(ln["unitPrice"]) * ln["quantity"] for ln in lines)
    return {
        "externalId": f"t-{n}",
        "source": "bench-pos",
        "customer": {"phone": phone(customer)},
        "placedAt": f"2025-01-{1 + n % 28:02d}T12:{n % 60:02d}:00Z",
        "subtotal": f"{subtotal:.2f}",
        "tax": f"{subtotal * 0.15:.2f}",
        "total": f"{subtotal * 1.15:.2f}",
        "lines": lines,
    }


async def send(http: httpx.AsyncClient, document: str, field: str, rows_key: str, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    variables = {"input": {rows_key: rows} | ({"source": "bench-pos"} if field == "ingestContacts" else {})}
    response = await http.post("/graphql", json={"query": document, "variables": variables})
    elapsed = time.perf_counter() - started
    body = response.json()
    assert response.status_code == 200, response.text[:500]
    assert not body.get("errors"), body["errors"][:3]
    bad = [r for r in body["data"][field]["results"] if r["userErrors"]]
    assert not bad, bad[:3]
    return elapsed


async def measure(
    settings: Settings, n_contacts: int, n_orders: int, batch: int, *, analyze_between: bool = True
) -> None:
    db = Database(create_engine(settings))
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug=f"bench-{random.randint(0, 10**6)}", name="Bench")
        org.points_per_order = 5
        key = await issue_key(session, org_id=org.id, role=Role.OPERATOR, name="bench")
    app = create_app(settings, database=db)
    headers = {"Authorization": f"Bearer {key.plaintext}"}
    rng = random.Random(7)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers, timeout=600
    ) as http:
        # Warm-up: parse caches, connection pool, statement caches.
        await send(http, INGEST, "ingestContacts", "contacts", [contact(10**6 + i) for i in range(20)])
        await send(http, ORDERS, "recordOrders", "orders", [order(10**6 + n, 10**6 + n, rng) for n in range(20)])

        async def analyze() -> None:
            # Statistics, as autovacuum keeps them on a live database: the tables start empty here,
            # and the foreign-key checks and the identity look-up planned against empty tables
            # scan them (the cost of a batch then grows with the rows the batches before it wrote).
            if analyze_between:
                async with db.engine.begin() as conn:
                    await conn.execute(text("ANALYZE"))

        for label, rows_of in (("contacts (new)", contact), ("contacts (known)", contact)):
            spent = 0.0
            for start in range(0, n_contacts, batch):
                await analyze()
                rows = [rows_of(i) for i in range(start, min(start + batch, n_contacts))]
                spent += await send(http, INGEST, "ingestContacts", "contacts", rows)
            print(f"{label:<22} {n_contacts / spent:8.0f} rows/s  ({spent * 1000 / n_contacts:.2f} ms/row)")
        all_orders = [order(n, rng.randrange(n_contacts), rng) for n in range(n_orders)]
        for label in ("orders (new)", "orders (replayed)"):
            spent = 0.0
            for start in range(0, n_orders, batch):
                await analyze()
                spent += await send(http, ORDERS, "recordOrders", "orders", all_orders[start : start + batch])
            print(f"{label:<22} {n_orders / spent:8.0f} rows/s  ({spent * 1000 / n_orders:.2f} ms/row)")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--no-analyze", action="store_true", help="no ANALYZE before each batch (statistics of the empty tables)"
    )
    args = parser.parse_args()
    with running_postgres() as url:
        # The batch, not the 10 s request limit, is what is measured.
        settings = Settings(database_url=url, request_timeout_seconds=600)
        migrate(settings)
        asyncio.run(measure(settings, args.contacts, args.orders, args.batch, analyze_between=not args.no_analyze))


if __name__ == "__main__":
    main()
