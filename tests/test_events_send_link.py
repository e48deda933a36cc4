"""sendLink: staff send a persona their wallet or referral link by text or email,
recorded as an outbound message; no contact, an opted-out channel, the permission
and other organizations send nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from database import Database
from models import Organization
from permissions.matrix import Role
from settings import Settings
from tests import events_support
from tests.conftest import ClientFactory, GraphQLClient
from tests.events_support import EMAIL, PHONE, history, record, sms
from tests.factories import MadePersona, make_persona

# Dana, the persona the events name: a fixture shared through tests/events_support.py.
dana = events_support.dana

SEND_LINK = """
mutation ($id: ID!, $link: LinkKind!, $channel: LinkChannel!) {
  sendLink(input: {personaId: $id, link: $link, channel: $channel}) {
    persona { number }
    message { direction channel body campaign }
    userErrors { field code message }
  }
}
"""


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
