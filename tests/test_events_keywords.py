"""STOP/START keywords: an inbound text recorded through recordEvents opts the
persona out of (or back into) TEXT, kept as consent events; other messages and
replays leave consent alone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from database import Database
from models import ConsentEvent
from tests import events_support
from tests.conftest import GraphQLClient
from tests.events_support import history, record, sms
from tests.factories import MadePersona

# Dana, the persona the events name: a fixture shared through tests/events_support.py.
dana = events_support.dana


async def consent_events(db: Database, persona: MadePersona) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(ConsentEvent)
            .where(col(ConsentEvent.persona_id) == persona.id)
            .order_by(col(ConsentEvent.occurred_at), col(ConsentEvent.id))
        )
        return [(e.channel, e.status, e.source) for e in rows.scalars()]


def text_opt_in(card: dict[str, Any]) -> tuple[str, str | None]:
    (text,) = [o for o in card["optIns"] if o["channel"] == "TEXT"]
    return text["status"], text["source"]


@pytest.mark.parametrize("body", ["STOP", " stop ", "StopAll", "UNSUBSCRIBE", "cancel", "End", "\tQUIT\n"])
async def test_an_inbound_stop_keyword_opts_the_persona_out_of_text(
    db: Database, owner_client: GraphQLClient, dana: MadePersona, body: str
) -> None:
    # When Dana texts an opt-out keyword
    payload = await record(owner_client, sms(body, "in-1"))
    assert payload["results"][0]["outcome"] == "RECORDED"
    # Then TEXT is OPTED_OUT by the customer, smsOptOutAt is set, and the message is in the history
    card = await history(owner_client, dana)
    assert text_opt_in(card) == ("OPTED_OUT", "CUSTOMER")
    assert card["logs"]["smsOptOutAt"] is not None
    assert card["history"]["messages"]["nodes"][0]["body"] == body
    # And the change is kept as a consent event
    assert await consent_events(db, dana) == [("TEXT", "OPTED_OUT", "CUSTOMER")]


@pytest.mark.parametrize("body", ["START", " unstop "])
async def test_an_inbound_start_keyword_opts_the_persona_back_in(
    db: Database, owner_client: GraphQLClient, dana: MadePersona, body: str
) -> None:
    # Given Dana opted out by texting STOP
    await record(owner_client, sms("STOP", "in-1"))
    # When Dana texts START (or UNSTOP)
    await record(owner_client, sms(body, "in-2"))
    # Then TEXT is OPTED_IN by the customer, and both changes are consent events
    assert text_opt_in(await history(owner_client, dana)) == ("OPTED_IN", "CUSTOMER")
    assert await consent_events(db, dana) == [("TEXT", "OPTED_OUT", "CUSTOMER"), ("TEXT", "OPTED_IN", "CUSTOMER")]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ("stop sending me deals please", {}),
        ("STOP.", {}),
        ("STOP", {"direction": "OUTBOUND"}),
        ("STOP", {"channel": "EMAIL"}),
    ],
)
async def test_other_messages_leave_consent_alone(
    db: Database, owner_client: GraphQLClient, dana: MadePersona, body: str, fields: dict[str, Any]
) -> None:
    # A sentence, a keyword with more to it, and an outbound or emailed keyword are just messages
    payload = await record(owner_client, sms(body, "m-1", **fields))
    assert payload["results"][0]["outcome"] == "RECORDED"
    assert await consent_events(db, dana) == []
    assert text_opt_in(await history(owner_client, dana)) == ("UNKNOWN", None)


async def test_a_replayed_stop_changes_consent_once(
    db: Database, owner_client: GraphQLClient, dana: MadePersona
) -> None:
    await record(owner_client, sms("STOP", "in-1"))
    await record(owner_client, sms("START", "in-2"))
    replay = await record(owner_client, sms("STOP", "in-1"))
    assert replay["results"][0]["outcome"] == "DUPLICATE"
    assert text_opt_in(await history(owner_client, dana)) == ("OPTED_IN", "CUSTOMER")
