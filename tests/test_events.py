"""recordEvents, STOP/START keywords, sendLink, the pixel endpoint, the
wallet and referral links over HTTP, and the referral flow into accrual."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlmodel import col

from app import create_app
from database import Database
from models import ConsentEvent, Discount, Organization, Persona, PixelEvent
from permissions.matrix import Role
from resolvers.engagement import referrer_for
from resolvers.links import persona_token
from routes.engagement import PIXEL_MAX_BODY, RateLimiter
from settings import Settings
from tests.conftest import ClientFactory, GraphQLClient, StatementCounter
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
PERSONA_COUNT = "{ personas { totalCount } }"
SEND_LINK = """
mutation ($id: ID!, $link: LinkKind!, $channel: LinkChannel!) {
  sendLink(input: {personaId: $id, link: $link, channel: $channel}) {
    persona { number }
    message { direction channel body campaign }
    userErrors { field code message }
  }
}
"""
POINTS = "query ($id: ID!) { persona(id: $id) { rewardPoints pointsOverview { referralSales } } }"
RECORD_ORDERS = """
mutation ($orders: [OrderInput!]!) {
  recordOrders(input: {orders: $orders}) { userErrors { code } results { outcome userErrors { field code } } }
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


# ---------------------------------------------------------------- recordEvents


async def test_every_kind_is_recorded_on_the_persona_it_names(owner_client: GraphQLClient, dana: MadePersona) -> None:
    # Given Dana, named by number, by phone in another format and by email in another case
    # When one event of each kind arrives
    payload = await record(
        owner_client,
        event("MESSAGE", "m-1", personaNumber=dana.number),
        event("SURVEY", "s-1", phone="415.555.0123"),
        event("ACTION", "a-1", email="  DANA@example.COM "),
        event("PIXEL", "p-1", personaNumber=dana.number),
    )
    # Then each is RECORDED on Dana
    assert payload["userErrors"] == []
    assert [(r["index"], r["outcome"], r["persona"]["number"]) for r in payload["results"]] == [
        (i, "RECORDED", dana.number) for i in range(4)
    ]
    # And the History tab shows each as it was sent
    card = (await history(owner_client, dana))["history"]
    assert card["messages"]["nodes"] == [
        {
            "direction": "INBOUND",
            "channel": "SMS",
            "body": "Do you have Gary Payton?",
            "campaign": "spring",
            "sentAt": "2026-03-01T15:30:00+00:00",
        }
    ]
    assert card["surveys"]["nodes"] == [
        {
            "surveyName": "Visit feedback",
            "status": "COMPLETE",
            "answers": [
                {"question": "How was your visit?", "answer": "Great"},
                {"question": "Anything else?", "answer": None},
            ],
            "submittedAt": "2026-03-01T15:30:00+00:00",
        }
    ]
    assert card["actions"]["nodes"] == [
        {
            "kind": "CLICKED",
            "campaign": "spring",
            "detail": "https://shop.example/deals",
            "occurredAt": "2026-03-01T15:30:00+00:00",
        }
    ]
    assert card["pixelEvents"]["nodes"] == [
        {
            "site": "shop.example",
            "event": "page_view",
            "url": "https://shop.example/menu",
            "occurredAt": "2026-03-01T15:30:00+00:00",
        }
    ]


@pytest.mark.parametrize("kind", ["MESSAGE", "SURVEY", "ACTION", "PIXEL"])
async def test_a_replayed_event_is_duplicate_and_changes_nothing(
    owner_client: GraphQLClient, dana: MadePersona, kind: str
) -> None:
    # Given an event already recorded
    first = await record(owner_client, event(kind, "x-1", personaNumber=dana.number))
    assert first["results"][0]["outcome"] == "RECORDED"
    # When the integration sends it again, even with other content, and twice in one batch
    again = await record(
        owner_client,
        event(kind, "x-1", personaNumber=dana.number, campaign="changed"),
        event(kind, "x-2", email=EMAIL),
        event(kind, "x-2", email=EMAIL),
    )
    # Then the replays are DUPLICATE, still naming Dana
    assert [(r["outcome"], r["persona"]["number"]) for r in again["results"]] == [
        ("DUPLICATE", dana.number),
        ("RECORDED", dana.number),
        ("DUPLICATE", dana.number),
    ]
    # And the history holds each event once
    field = {"MESSAGE": "messages", "SURVEY": "surveys", "ACTION": "actions", "PIXEL": "pixelEvents"}[kind]
    assert (await history(owner_client, dana))["history"][field]["totalCount"] == 2


async def test_the_same_external_id_from_another_source_is_another_event(
    owner_client: GraphQLClient, dana: MadePersona
) -> None:
    payload = await record(
        owner_client,
        event("MESSAGE", "same", personaNumber=dana.number),
        event("MESSAGE", "same", personaNumber=dana.number, source="klaviyo"),
    )
    assert [r["outcome"] for r in payload["results"]] == ["RECORDED", "RECORDED"]


@pytest.mark.parametrize(
    ("who", "field"),
    [
        ({"personaNumber": 999}, "personaNumber"),
        ({"phone": "+1 415 555 0199"}, "phone"),
        ({"email": "nobody@example.com"}, "email"),
    ],
)
async def test_an_unknown_contact_is_rejected_and_no_persona_is_made(
    owner_client: GraphQLClient, dana: MadePersona, who: dict[str, Any], field: str
) -> None:
    # When an event names nobody this organization knows
    payload = await record(owner_client, event("ACTION", **who))
    # Then it is REJECTED with NOT_FOUND on the field that named them
    (result,) = payload["results"]
    assert result["outcome"] == "REJECTED"
    assert result["persona"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("NOT_FOUND", ["input", "events", "0", field])]
    # And events never create personas
    assert (await owner_client.data(PERSONA_COUNT))["personas"]["totalCount"] == 1


async def test_a_persona_of_another_organization_is_not_found(
    client_for: ClientFactory, other_org: Organization, dana: MadePersona
) -> None:
    rival = await client_for(Role.OWNER, other_org)
    payload = await record(rival, event("ACTION", phone=PHONE), event("ACTION", "e-2", personaNumber=dana.number))
    assert [r["userErrors"][0]["code"] for r in payload["results"]] == ["NOT_FOUND", "NOT_FOUND"]


async def test_malformed_contacts_are_rejected_with_their_own_codes(
    owner_client: GraphQLClient, dana: MadePersona
) -> None:
    payload = await record(owner_client, event("ACTION", phone="12"), event("ACTION", "e-2", email="not-an-email"))
    assert [[(e["code"], e["field"][-1]) for e in r["userErrors"]] for r in payload["results"]] == [
        [("INVALID_PHONE", "phone")],
        [("INVALID_EMAIL", "email")],
    ]


@pytest.mark.parametrize(
    ("kind", "missing"),
    [
        ("MESSAGE", "direction"),
        ("MESSAGE", "channel"),
        ("MESSAGE", "body"),
        ("SURVEY", "surveyName"),
        ("SURVEY", "surveyStatus"),
        ("ACTION", "actionKind"),
        ("PIXEL", "site"),
        ("PIXEL", "event"),
    ],
)
async def test_a_field_the_kind_needs_is_invalid_when_missing(
    owner_client: GraphQLClient, dana: MadePersona, kind: str, missing: str
) -> None:
    # Given a good row, and one of this kind without the field
    good = event("ACTION", "good", personaNumber=dana.number)
    bad = event(kind, "bad", personaNumber=dana.number)
    del bad[missing]
    # When both arrive in one batch
    payload = await record(owner_client, good, bad)
    # Then the bad one is REJECTED, naming the field, and the good one is still RECORDED
    assert [r["outcome"] for r in payload["results"]] == ["RECORDED", "REJECTED"]
    assert [(e["code"], e["field"]) for e in payload["results"][1]["userErrors"]] == [
        ("INVALID", ["input", "events", "1", missing])
    ]
    assert (await history(owner_client, dana))["history"]["actions"]["totalCount"] == 1


async def test_blank_names_and_a_row_naming_nobody_are_invalid(owner_client: GraphQLClient, dana: MadePersona) -> None:
    nobody = event("PIXEL", "p-1")
    payload = await record(
        owner_client,
        nobody,
        event("SURVEY", "s-1", personaNumber=dana.number, surveyName="  "),
        event("PIXEL", "p-2", personaNumber=dana.number, externalId=" ", occurredAt="2026-03-01T15:30:00"),
    )
    errors = [[(e["code"], e["field"][-1]) for e in r["userErrors"]] for r in payload["results"]]
    assert errors == [
        [("INVALID", "personaNumber")],
        [("INVALID", "surveyName")],
        [("INVALID", "externalId"), ("INVALID", "occurredAt")],
    ]


async def test_an_overlong_field_is_invalid_not_a_server_error(owner_client: GraphQLClient, dana: MadePersona) -> None:
    payload = await record(
        owner_client, event("PIXEL", personaNumber=dana.number, url="https://x.example/" + "a" * 2000)
    )
    assert [(e["code"], e["field"][-1]) for e in payload["results"][0]["userErrors"]] == [("INVALID", "url")]


async def test_more_than_a_thousand_events_is_too_many_and_writes_nothing(
    owner_client: GraphQLClient, dana: MadePersona
) -> None:
    rows = [event("ACTION", f"a-{i}", personaNumber=dana.number) for i in range(1001)]
    payload = await record(owner_client, *rows)
    assert payload["results"] == []
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("TOO_MANY", ["input", "events"])]
    assert (await history(owner_client, dana))["history"]["actions"]["totalCount"] == 0


async def test_a_batch_costs_the_same_statements_however_many_rows_it_has(
    db: Database, org: Organization, owner_client: GraphQLClient, dana: MadePersona, statements: StatementCounter
) -> None:
    # Given a second persona, so rows name several people in several ways
    sam = await make_persona(db, org, email="sam@example.com")
    kinds = ["MESSAGE", "SURVEY", "ACTION", "PIXEL"]

    def batch(size: int, prefix: str) -> list[dict[str, Any]]:
        who: list[dict[str, Any]] = [{"personaNumber": dana.number}, {"phone": PHONE}, {"email": "sam@example.com"}]
        return [event(kinds[i % 4], f"{prefix}-{i}", **who[i % 3]) for i in range(size)]

    async def cost(events: list[dict[str, Any]]) -> int:
        statements.count, statements.active = 0, True
        try:
            payload = await record(owner_client, *events)
        finally:
            statements.active = False
        assert {r["outcome"] for r in payload["results"]} == {"RECORDED"}
        return statements.count

    # When a batch of 8 and a batch of 200 are recorded (after a first request has settled the key)
    await owner_client.data(PERSONA_COUNT)
    few, many = await cost(batch(8, "few")), await cost(batch(200, "many"))
    # Then both cost the same number of statements
    assert many == few, (few, many)
    assert (await history(owner_client, sam))["history"]["actions"]["totalCount"] > 0


@pytest.mark.parametrize("role", [Role.STAFF, Role.MANAGER, Role.MARKETING, Role.ANALYST])
async def test_recording_events_needs_the_ingest_permission(
    client_for: ClientFactory, owner_client: GraphQLClient, dana: MadePersona, role: Role
) -> None:
    client = await client_for(role)
    payload = await record(client, event("ACTION", personaNumber=dana.number))
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert (await history(owner_client, dana))["history"]["actions"]["totalCount"] == 0


async def test_an_event_for_a_merged_away_persona_lands_on_the_survivor(
    db: Database, org: Organization, owner_client: GraphQLClient, dana: MadePersona
) -> None:
    # Given a second persona of Dana's (email only), folded into the first by a contact with both
    twin = await make_persona(db, org, email="dana.work@example.com")
    await make_persona(db, org, phone=PHONE, email="dana.work@example.com")
    # When an event names the merged-away persona by its number
    payload = await record(owner_client, event("ACTION", personaNumber=twin.number))
    # Then it lands on the survivor
    assert payload["results"][0]["persona"]["number"] == dana.number


# ---------------------------------------------------------------- STOP / START


def sms(body: str, external_id: str, **fields: Any) -> dict[str, Any]:
    return event("MESSAGE", external_id, phone=PHONE, body=body, campaign=None, **fields)


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


# ---------------------------------------------------------------- sendLink


@pytest.fixture
def outbox(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """What the development notifier sent: it writes every message to the log."""
    caplog.set_level(logging.INFO, logger="personagraph.notifier")
    return caplog


def sent(outbox: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in outbox.records if r.name == "personagraph.notifier"]


@pytest.mark.parametrize(
    ("link", "channel", "message_channel", "path"),
    [("WALLET", "TEXT", "SMS", "/wallet/"), ("REFERRAL", "EMAIL", "EMAIL", "/r/")],
)
async def test_send_link_sends_it_and_records_an_outbound_message(
    staff_client: GraphQLClient,
    owner_client: GraphQLClient,
    settings: Settings,
    dana: MadePersona,
    outbox: pytest.LogCaptureFixture,
    link: str,
    channel: str,
    message_channel: str,
    path: str,
) -> None:
    # When staff send Dana a link
    payload = (await staff_client.data(SEND_LINK, {"id": dana.gid, "link": link, "channel": channel}))["sendLink"]
    # Then the payload carries the OUTBOUND message with the link
    assert payload["userErrors"] == []
    message = payload["message"]
    assert (message["direction"], message["channel"], message["campaign"]) == (
        "OUTBOUND",
        message_channel,
        f"{link.lower()}-link",
    )
    assert message["body"].startswith("Hi Dana")
    assert settings.public_base_url + path in message["body"]
    # And the notifier sent exactly that text, to a masked recipient in the log
    (line,) = sent(outbox)
    assert message["body"] in line
    assert PHONE not in line
    assert EMAIL not in line
    # And the history shows it
    messages = (await history(owner_client, dana))["history"]["messages"]["nodes"]
    assert [m["body"] for m in messages] == [message["body"]]


async def test_the_sent_wallet_link_opens_the_wallet(
    staff_client: GraphQLClient, dana: MadePersona, outbox: pytest.LogCaptureFixture, settings: Settings
) -> None:
    body = (await staff_client.data(SEND_LINK, {"id": dana.gid, "link": "WALLET", "channel": "EMAIL"}))["sendLink"]
    url = next(w for w in body["message"]["body"].split() if w.startswith(settings.public_base_url))
    page = await staff_client.http.get(url.removeprefix(settings.public_base_url))
    assert page.status_code == 200
    assert "Hi Dana" in page.text


async def test_send_link_without_that_contact_is_no_contact_info_and_sends_nothing(
    db: Database, org: Organization, staff_client: GraphQLClient, owner_client: GraphQLClient, outbox: Any
) -> None:
    email_only = await make_persona(db, org, email="only@example.com")
    payload = await staff_client.data(SEND_LINK, {"id": email_only.gid, "link": "WALLET", "channel": "TEXT"})
    assert [(e["code"], e["field"]) for e in payload["sendLink"]["userErrors"]] == [
        ("NO_CONTACT_INFO", ["input", "channel"])
    ]
    assert payload["sendLink"]["message"] is None
    assert sent(outbox) == []
    assert (await history(owner_client, email_only))["history"]["messages"]["totalCount"] == 0


async def test_send_link_to_an_opted_out_channel_is_opted_out_and_sends_nothing(
    staff_client: GraphQLClient, owner_client: GraphQLClient, dana: MadePersona, outbox: Any
) -> None:
    # Given Dana texted STOP
    await record(owner_client, sms("STOP", "in-1"))
    # When staff try to text a link
    payload = await staff_client.data(SEND_LINK, {"id": dana.gid, "link": "REFERRAL", "channel": "TEXT"})
    # Then OPTED_OUT, nothing is sent and only Dana's STOP is in the history
    assert [e["code"] for e in payload["sendLink"]["userErrors"]] == ["OPTED_OUT"]
    assert sent(outbox) == []
    assert (await history(owner_client, dana))["history"]["messages"]["totalCount"] == 1
    # But email still works
    by_email = await staff_client.data(SEND_LINK, {"id": dana.gid, "link": "REFERRAL", "channel": "EMAIL"})
    assert by_email["sendLink"]["userErrors"] == []


async def test_send_link_needs_edit_profile_and_stays_in_the_organization(
    client_for: ClientFactory, other_org: Organization, dana: MadePersona, outbox: Any
) -> None:
    analyst = await client_for(Role.ANALYST)
    denied = await analyst.data(SEND_LINK, {"id": dana.gid, "link": "WALLET", "channel": "EMAIL"})
    assert [e["code"] for e in denied["sendLink"]["userErrors"]] == ["FORBIDDEN"]
    rival = await client_for(Role.OWNER, other_org)
    elsewhere = await rival.data(SEND_LINK, {"id": dana.gid, "link": "WALLET", "channel": "EMAIL"})
    assert [e["code"] for e in elsewhere["sendLink"]["userErrors"]] == ["NOT_FOUND"]
    assert sent(outbox) == []


# ---------------------------------------------------------------- the pixel endpoint


def report(token: str, event_name: str = "page_view", **extra: Any) -> bytes:
    body = {"token": token, "event": event_name, "url": f"https://shop.example/menu?pg={token}&cat=flower"}
    body.update(extra)
    return json.dumps(body).encode()


PIXEL_HEADERS = {"Origin": "https://shop.example", "Content-Type": "text/plain"}


async def test_a_pixel_report_with_a_valid_token_is_stored_without_the_token(
    owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    token = persona_token(settings, org.id, dana.id, "pixel")
    response = await owner_client.http.post("/px/acme", content=report(token), headers=PIXEL_HEADERS)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    (stored,) = (await history(owner_client, dana))["history"]["pixelEvents"]["nodes"]
    assert (stored["site"], stored["event"], stored["url"]) == (
        "shop.example",
        "page_view",
        "https://shop.example/menu?cat=flower",
    )


async def test_a_pixel_token_made_before_tokens_went_uncompressed_is_still_accepted(
    owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    # itsdangerous's own form, its payload compressed, as links were signed until session 10
    before = URLSafeTimedSerializer(settings.secret, salt="personagraph.pixel").dumps([org.id.hex, dana.id.hex])
    now = persona_token(settings, org.id, dana.id, "pixel")
    assert before.startswith(".")  # compressed
    assert not now.startswith(".")
    for token in (before, now):
        response = await owner_client.http.post("/px/acme", content=report(token), headers=PIXEL_HEADERS)
        assert response.status_code == 204
    assert (await history(owner_client, dana))["history"]["pixelEvents"]["totalCount"] == 2


async def test_the_pixel_answers_a_cors_preflight(owner_client: GraphQLClient) -> None:
    response = await owner_client.http.options(
        "/px/acme", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_the_pixel_accepts_only_valid_pixel_tokens_of_that_organization(
    db: Database,
    owner_client: GraphQLClient,
    settings: Settings,
    org: Organization,
    other_org: Organization,
    dana: MadePersona,
) -> None:
    rival = await make_persona(db, other_org, phone=PHONE)
    refused = {
        "a wallet token": persona_token(settings, org.id, dana.id, "wallet"),
        "another organization's token": persona_token(settings, other_org.id, rival.id, "pixel"),
        "a forged token": persona_token(settings, org.id, dana.id, "pixel")[:-3] + "abc",
        "junk": "not-a-token",
    }
    for what, token in refused.items():
        response = await owner_client.http.post("/px/acme", content=report(token), headers=PIXEL_HEADERS)
        assert response.status_code == 403, what
    unknown_org = await owner_client.http.post(
        "/px/nobody", content=report(persona_token(settings, org.id, dana.id, "pixel")), headers=PIXEL_HEADERS
    )
    assert unknown_org.status_code == 403
    assert (await history(owner_client, dana))["history"]["pixelEvents"]["totalCount"] == 0


async def test_the_pixel_refuses_oversized_and_malformed_reports(
    owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    token = persona_token(settings, org.id, dana.id, "pixel")
    big = report(token, padding="x" * PIXEL_MAX_BODY)
    assert (await owner_client.http.post("/px/acme", content=big, headers=PIXEL_HEADERS)).status_code == 413
    for body in (b"not json", b"[]", report(token, event_name=""), report(token, event_name="x" * 201)):
        assert (await owner_client.http.post("/px/acme", content=body, headers=PIXEL_HEADERS)).status_code == 400
    assert (await history(owner_client, dana))["history"]["pixelEvents"]["totalCount"] == 0


async def test_the_pixel_is_rate_limited_per_client(
    db: Database, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    # Given an app whose pixel allows three events a minute per client
    app = create_app(settings, database=db)
    app.state.pixel_limiter = RateLimiter(3)
    token = persona_token(settings, org.id, dana.id, "pixel")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        statuses = [
            (await http.post("/px/acme", content=report(token, f"e{i}"), headers=PIXEL_HEADERS)).status_code
            for i in range(5)
        ]
        last = await http.post("/px/acme", content=report(token), headers=PIXEL_HEADERS)
    # Then the fourth and later get 429 with Retry-After
    assert statuses == [204, 204, 204, 429, 429]
    assert int(last.headers["retry-after"]) >= 1
    async with db.session() as session:
        stored = (await session.execute(select(PixelEvent).where(col(PixelEvent.persona_id) == dana.id))).all()
    assert len(stored) == 3


async def test_the_pixel_script_is_served_as_javascript(owner_client: GraphQLClient) -> None:
    response = await owner_client.http.get("/px.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "personagraph" in response.text


# ---------------------------------------------------------------- wallet and referral links over HTTP


async def test_the_wallet_page_shows_points_rewards_pin_and_referral_link(
    db: Database, owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(Organization).where(col(Organization.id) == org.id).values(show_pin_in_wallets=True)
        )
        await session.execute(update(Persona).where(col(Persona.id) == dana.id).values(wallet_pin="4821"))
        session.add(Discount(org_id=org.id, name="$5 off", points_cost=100))
    token = persona_token(settings, org.id, dana.id, "wallet")
    page = await owner_client.http.get(f"/wallet/{token}")
    assert page.status_code == 200
    assert "Hi Dana" in page.text
    assert "4821" in page.text
    assert "$5 off" in page.text
    assert f"{settings.public_base_url}/r/" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


async def test_invalid_wallet_links_get_the_same_plain_page(
    owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    tokens = [
        persona_token(settings, org.id, dana.id, "referral"),
        persona_token(settings, org.id, dana.id, "wallet")[:-2] + "xx",
        "garbage",
        "x" * 2000,
    ]
    pages = [await owner_client.http.get(f"/wallet/{t}") for t in tokens]
    assert {p.status_code for p in pages} == {404}
    assert len({p.text.split("</style>")[1] for p in pages}) == 1
    assert all("Dana" not in p.text for p in pages)


async def test_the_referral_link_opens_the_sign_up_form_with_the_referrer(
    owner_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona, db: Database
) -> None:
    token = persona_token(settings, org.id, dana.id, "referral")
    response = await owner_client.http.get(f"/r/{token}")
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/signup/acme"
    (ref,) = parse_qs(location.query)["ref"]
    async with db.session() as session:
        assert await referrer_for(session, settings, org.id, ref) == dana.id
        assert await referrer_for(session, settings, org.id, ref[:-2] + "zz") is None
    bad = await owner_client.http.get(f"/r/{token[:-2]}zz")
    assert bad.status_code == 404


async def test_a_referred_customers_orders_pay_the_referrer(
    db: Database, operator_client: GraphQLClient, settings: Settings, org: Organization, dana: MadePersona
) -> None:
    # Given referral points are on, and Dana is a loyalty member
    async with db.session() as session, session.begin():
        await session.execute(
            update(Organization)
            .where(col(Organization.id) == org.id)
            .values(referral_points_enabled=True, referral_points=50, points_per_dollar_milli=1000)
        )
    await make_persona(db, org, phone=PHONE, loyalty_member=True)
    # When a friend follows Dana's referral link and signs up with it
    link = await operator_client.http.get(f"/r/{persona_token(settings, org.id, dana.id, 'referral')}")
    (ref,) = parse_qs(urlsplit(link.headers["location"]).query)["ref"]
    async with db.session() as session:
        referrer = await referrer_for(session, settings, org.id, ref)
    friend = await make_persona(
        db, org, source="LOYALTY", first_name="Sam", phone="+14155550188", loyalty_member=True, referred_by_id=referrer
    )
    # And the friend's orders arrive from the point of sale, which knows nothing of the referral
    orders = [
        {
            "externalId": f"t-{i}",
            "source": "pos",
            "customer": {"phone": "415-555-0188"},
            "placedAt": (dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(days=i)).isoformat(),
            "subtotal": "40.00",
            "tax": "6.00",
            "total": "46.00",
            "lines": [{"product": "Gummies", "quantity": 1, "unitPrice": "40.00"}],
        }
        for i in range(2)
    ]
    recorded = (await operator_client.data(RECORD_ORDERS, {"orders": orders}))["recordOrders"]
    assert [r["outcome"] for r in recorded["results"]] == ["RECORDED", "RECORDED"]
    # Then each order pays Dana REFERRAL_SALE points, and the friend earns their own
    dana_points = (await operator_client.data(POINTS, {"id": dana.gid}))["persona"]
    assert dana_points == {"rewardPoints": 100, "pointsOverview": {"referralSales": 100}}
    friend_points = (await operator_client.data(POINTS, {"id": friend.gid}))["persona"]
    assert friend_points == {"rewardPoints": 80, "pointsOverview": {"referralSales": 0}}
