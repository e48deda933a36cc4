"""What the benchmark sends: the GraphQL documents of each operation (the card
and tab documents from operations/, plus the Personas page and the write
batches) and the rows of the write batches."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPERATIONS_DIR = Path(__file__).resolve().parent.parent / "operations"

PERSONAS_PAGE = """
query PersonasPage($query: String, $first: Int) {
  personas(query: $query, first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id number firstName lastName fullName email phone loyaltyMember createdAt rewardPoints tags
    }
  }
}
"""

INGEST_CONTACTS = """
mutation BenchIngest($input: IngestContactsInput!) {
  ingestContacts(input: $input) {
    results { index outcome persona { id number } userErrors { code } }
    userErrors { code }
  }
}
"""

RECORD_ORDERS = """
mutation BenchOrders($input: RecordOrdersInput!) {
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


@dataclass(frozen=True)
class ReadOperation:
    """A read: the GraphQL document, the floor route, and what varies per request."""

    name: str
    document: str
    floor_path: str
    per_persona: bool  # variables {"id": ...} cycling through the sample personas
    variables: dict[str, Any]


def document(name: str) -> str:
    return (OPERATIONS_DIR / f"{name}.graphql").read_text()


def read_operations(searches: dict[str, str]) -> list[ReadOperation]:
    """The card, each tab alone, the Personas page and each kind of search."""
    ops = [
        ReadOperation("card", document("card"), "/floor/card", True, {}),
        ReadOperation("tab: header", document("header"), "/floor/header", True, {}),
        ReadOperation("tab: general", document("general"), "/floor/general", True, {}),
        ReadOperation("tab: points", document("points"), "/floor/points", True, {}),
        ReadOperation("tab: discounts", document("discounts"), "/floor/discounts", True, {}),
        ReadOperation("tab: history", document("history"), "/floor/history", True, {}),
        ReadOperation("personas page (50)", PERSONAS_PAGE, "/floor/personas", False, {"first": 50}),
    ]
    for label, query in searches.items():
        ops.append(
            ReadOperation(f"search: {label}", PERSONAS_PAGE, "/floor/personas", False, {"query": query, "first": 50})
        )
    return ops


PHONE_BASE = 2_000_000
IMPORT_BASE = 5_000_000  # the CSV import's contacts (bench/writes.py) from here on, the batches' below


def new_phone(i: int) -> str:
    """Phones in an area code the generator never uses: every ingested contact is new."""
    return f"+1628{PHONE_BASE + i:07d}"


def contact(i: int) -> dict[str, Any]:
    return {
        "sourceId": f"bench-ingest-{i}",
        "firstName": f"Ingest{i}",
        "lastName": "Customer",
        "phone": new_phone(i),
        "email": f"ingest{i}@bench.example",
        "loyaltyMember": True,
        "attributes": [{"key": "budtender", "value": "Sam"}],
        "tags": ["vip"],
        "consents": [
            {"channel": "TEXT", "status": "OPTED_IN", "source": "INTEGRATION"},
            {"channel": "EMAIL", "status": "OPTED_IN", "source": "INTEGRATION"},
        ],
    }


def order(n: int, customer: int, rng: random.Random, run: str) -> dict[str, Any]:
    picked = [(product, rng.choice([1, 2])) for product in rng.sample(PRODUCTS, k=rng.choice([1, 2, 3]))]
    lines = [
        {"product": p, "brand": b, "category": c, "quantity": quantity, "unitPrice": price}
        for (p, b, c, price), quantity in picked
    ]
    subtotal = sum(float(price) * quantity for (_p, _b, _c, price), quantity in picked)
    return {
        "externalId": f"bench-{run}-{n}",
        "source": "bench-ingest",
        "customer": {"phone": new_phone(customer)},
        "placedAt": f"2025-01-{1 + n % 28:02d}T12:{n % 60:02d}:00Z",
        "subtotal": f"{subtotal:.2f}",
        "tax": f"{subtotal * 0.15:.2f}",
        "total": f"{subtotal * 1.15:.2f}",
        "lines": lines,
    }
