"""What the ingestContacts tests share: the customers' contacts, the card each result carries, the
mutation and the persona count, and an ingest that holds the results to one per contact, in order."""

from __future__ import annotations

from typing import Any

from tests.conftest import GraphQLClient

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"
BEA_PHONE, BEA_EMAIL = "(646) 783-0134", "bea@example.com"

CARD = """
    id number firstName lastName email phone birthday archivedAt loyaltyMember mergedInto { number }
    sourcedFrom { kind integration }
    rewardPoints
    pointsOverview { legacyImported }
    customAttributes { key value source }
    tags
    optIns { channel status source }
    shoppingHabits { salesCount }
    history {
      orders { totalCount nodes { externalId } }
      merges { nodes { kind reason mergedNumber survivor { number } } }
    }
"""
INGEST = f"""
mutation ($input: IngestContactsInput!) {{
  ingestContacts(input: $input) {{
    results {{ index outcome persona {{ {CARD} }} userErrors {{ field message code }} }}
    userErrors {{ field message code }}
  }}
}}
"""
PERSONAS = "query { personas(includeArchived: true) { totalCount nodes { number } } }"


async def ingest(client: GraphQLClient, *contacts: dict[str, Any], source: str = "acme-pos") -> list[dict[str, Any]]:
    data = await client.data(INGEST, {"input": {"source": source, "contacts": list(contacts)}})
    payload = data["ingestContacts"]
    assert payload["userErrors"] == []
    results: list[dict[str, Any]] = payload["results"]
    assert [r["index"] for r in results] == list(range(len(contacts)))
    return results


def outcomes(results: list[dict[str, Any]]) -> list[str]:
    return [r["outcome"] for r in results]
