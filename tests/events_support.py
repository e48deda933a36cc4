"""What the events tests share (tests/test_events_*.py): the recordEvents and
persona-history documents, a complete event of each kind, an inbound SMS, and Dana,
the persona the events name.

``dana`` is a fixture; a test module registers it with ``dana = events_support.dana``.
"""

from __future__ import annotations

from typing import Any

import pytest

from database import Database
from models import Organization
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, make_persona

RECORD_EVENTS = """
mutation ($events: [EventInput!]!) {
  recordEvents(input: {events: $events}) {
    userErrors { field code message }
    results { index outcome persona { number } userErrors { field code message } }
  }
}
"""
HISTORY = """
query ($id: ID!) {
  persona(id: $id) {
    number
    optIns { channel status source }
    logs { smsOptOutAt }
    history {
      messages(first: 20) { totalCount nodes { direction channel body campaign sentAt } }
      surveys(first: 20) { totalCount nodes { surveyName status answers { question answer } submittedAt } }
      actions(first: 20) { totalCount nodes { kind campaign detail occurredAt } }
      pixelEvents(first: 20) { totalCount nodes { site event url occurredAt } }
    }
  }
}
"""


AT = "2026-03-01T15:30:00+00:00"
PHONE = "+14155550123"
EMAIL = "dana@example.com"


def event(kind: str, external_id: str = "e-1", **fields: Any) -> dict[str, Any]:
    """A complete event of the kind for the persona numbered 1 unless told otherwise."""
    complete: dict[str, dict[str, Any]] = {
        "MESSAGE": {"direction": "INBOUND", "channel": "SMS", "body": "Do you have Gary Payton?", "campaign": "spring"},
        "SURVEY": {
            "surveyName": "Visit feedback",
            "surveyStatus": "COMPLETE",
            "answers": [{"question": "How was your visit?", "answer": "Great"}, {"question": "Anything else?"}],
        },
        "ACTION": {"actionKind": "CLICKED", "campaign": "spring", "detail": "https://shop.example/deals"},
        "PIXEL": {"site": "shop.example", "event": "page_view", "url": "https://shop.example/menu"},
    }
    row: dict[str, Any] = {"externalId": external_id, "source": "twilio", "kind": kind, "occurredAt": AT}
    row.update(complete[kind])
    row.update(fields)
    return row


async def record(client: GraphQLClient, *events: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = (await client.data(RECORD_EVENTS, {"events": list(events)}))["recordEvents"]
    return payload


async def history(client: GraphQLClient, persona: MadePersona) -> dict[str, Any]:
    data: dict[str, Any] = (await client.data(HISTORY, {"id": persona.gid}))["persona"]
    return data


@pytest.fixture
async def dana(db: Database, org: Organization) -> MadePersona:
    return await make_persona(db, org, first_name="Dana", phone="(415) 555-0123", email="Dana@Example.com")


def sms(body: str, external_id: str, **fields: Any) -> dict[str, Any]:
    return event("MESSAGE", external_id, phone=PHONE, body=body, campaign=None, **fields)
