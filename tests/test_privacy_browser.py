"""The public privacy page in headless Chromium, end to end.

The app is served by uvicorn in a thread on a free port (tests/live_server.py),
against the test database, with a LogNotifier whose `sent` list is where the
codes are read.
Sync Playwright keeps this thread's event loop marked as running, so every
database step runs in a worker thread with an event loop of its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, Response, expect
from sqlalchemy import select
from sqlmodel import col

from database import Database
from models import Consent, Organization, Persona
from resolvers.ingest import ConsentData, ContactData, ingest_one
from resolvers.notifier import LogNotifier
from resolvers.organizations import create_organization
from settings import Settings
from tests import browser as chromium
from tests.browser import on_database
from tests.factories import empty_tables
from tests.live_server import live_server

pytestmark = pytest.mark.browser

# The module-scoped Chromium and a fresh page per test.
browser = chromium.browser
page = chromium.page

PHONE, EMAIL = "+15415550123", "zebulon.q@example.com"
TOKEN = re.compile(r'name="csrf_token" value="[^"]+"')
CODE = re.compile(r"code is (\d{6})")


@dataclass
class Served:
    url: str
    notifier: LogNotifier
    settings: Settings

    def codes_sent_to(self, to: str) -> list[str]:
        return [c for n in list(self.notifier.sent) if n.to == to for c in CODE.findall(n.body)]


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[Served]:
    notifier = LogNotifier()
    with live_server(settings, notifier=notifier) as live:
        yield Served(live.url, notifier, live.settings)


@pytest.fixture
def org_id(server: Served) -> uuid.UUID:
    """Empty tables and the organization "acme"."""

    async def reset(db: Database) -> uuid.UUID:
        await empty_tables(db)
        async with db.session() as session, session.begin():
            return (await create_organization(session, slug="acme", name="Acme Cannabis Co.")).id

    server.notifier.sent.clear()
    return on_database(server.settings, reset)


def given_persona(server: Served, org_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    async def make(db: Database) -> uuid.UUID:
        async with db.session() as session, session.begin():
            org = await session.get(Organization, org_id)
            assert org is not None
            result = await ingest_one(session, org, "test-pos", ContactData(**fields), actor="test", path=["c"])
        assert result.persona is not None
        return result.persona.id

    return on_database(server.settings, make)


def persona_state(server: Served, org_id: uuid.UUID, persona_id: uuid.UUID) -> tuple[Persona, dict[str, str]]:
    async def read(db: Database) -> tuple[Persona, dict[str, str]]:
        async with db.session() as session:
            persona = await session.get(Persona, (org_id, persona_id))
            assert persona is not None
            consents = await session.execute(
                select(Consent).where(col(Consent.org_id) == org_id, col(Consent.persona_id) == persona_id)
            )
            return persona, {c.channel: f"{c.status} {c.source}" for c in consents.scalars()}

    return on_database(server.settings, read)


def watch_console(page: Page) -> list[str]:
    """Console errors (Chromium reports CSP violations there)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def test_a_customer_opts_out_on_the_page(page: Page, server: Served, org_id: uuid.UUID) -> None:
    persona_id = given_persona(
        server, org_id, phone=PHONE, consents=[ConsentData(channel="TEXT", status="OPTED_IN", source="IMPORT")]
    )
    errors = watch_console(page)

    page.goto(f"{server.url}/privacy/acme")
    expect(page.get_by_role("heading")).to_have_text("Acme Cannabis Co.: your privacy")
    page.get_by_label("Phone").fill("(541) 555-0123")
    page.get_by_label("Opt me out of all messages").check()
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("status")).to_contain_text("it will get no more messages from us")
    persona, consents = persona_state(server, org_id, persona_id)
    assert set(consents.values()) == {"OPTED_OUT PRIVACY_REQUEST"}
    assert len(consents) == 8
    assert persona.sms_opt_out_at is not None
    assert errors == []


def test_a_customer_deletes_their_data_with_the_code_sent_to_them(
    page: Page, server: Served, org_id: uuid.UUID
) -> None:
    persona_id = given_persona(server, org_id, phone=PHONE, email=EMAIL, first_name="Zebulon")

    page.goto(f"{server.url}/privacy/acme")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Delete my data").check()
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_label("Code")).to_be_visible()
    assert persona_state(server, org_id, persona_id)[0].first_name == "Zebulon"
    (code,) = server.codes_sent_to(EMAIL)

    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Delete my data").click()

    expect(page.get_by_role("status")).to_contain_text("it has been deleted")
    persona, _ = persona_state(server, org_id, persona_id)
    assert persona.erased_at is not None
    assert (persona.first_name, persona.email, persona.phone) == (None, None, None)


def test_a_wrong_code_deletes_nothing(page: Page, server: Served, org_id: uuid.UUID) -> None:
    persona_id = given_persona(server, org_id, phone=PHONE, first_name="Zebulon")
    page.goto(f"{server.url}/privacy/acme")
    page.get_by_label("Phone").fill(PHONE)
    page.get_by_label("Delete my data").check()
    page.get_by_role("button", name="Send").click()
    (code,) = server.codes_sent_to(PHONE)

    page.get_by_label("Phone").fill(PHONE)
    page.get_by_label("Code").fill(f"{(int(code) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Delete my data").click()

    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    assert persona_state(server, org_id, persona_id)[0].erased_at is None


def submit_and_read(page: Page, url: str, action_label: str, phone: str, email: str) -> tuple[int, bytes]:
    page.goto(url)
    page.get_by_label("Phone").fill(phone)
    page.get_by_label("Email").fill(email)
    page.get_by_label(action_label).check()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Send").click()
    response: Response = answer.value
    return response.status, response.body()


@pytest.mark.parametrize("action_label", ["Opt me out of all messages", "Delete my data"])
def test_answers_for_a_known_and_an_unknown_contact_are_byte_identical(
    page: Page, server: Served, org_id: uuid.UUID, action_label: str
) -> None:
    given_persona(server, org_id, phone=PHONE, email=EMAIL, first_name="Zebulon")
    url = f"{server.url}/privacy/acme"

    known = submit_and_read(page, url, action_label, PHONE, EMAIL)
    unknown = submit_and_read(page, url, action_label, "+15415550199", "nobody.here@example.com")

    assert known[0] == unknown[0] == 200
    assert TOKEN.sub("TOKEN", known[1].decode()) == TOKEN.sub("TOKEN", unknown[1].decode())
