"""recordEvents: each kind of event recorded on the persona it names, replays as
DUPLICATE, rejected rows and their codes, the batch limit and its statement cost,
the ingest permission, and events naming a merged-away persona."""

from __future__ import annotations

from typing import Any

import pytest

from database import Database
from models import Organization
from permissions.matrix import Role
from tests import events_support
from tests.conftest import ClientFactory, GraphQLClient, StatementCounter
from tests.events_support import EMAIL, PHONE, event, history, record
from tests.factories import MadePersona, make_persona

# Dana, the persona the events name: a fixture shared through tests/events_support.py.
dana = events_support.dana

PERSONA_COUNT = "{ personas { totalCount } }"


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
