"""The public privacy page over HTTP: opt-out, deletion by code, and what the page gives away (nothing).

The app runs in-process (httpx against the ASGI app) with the development
LogNotifier, whose `sent` list is where the codes are read. Headless
Chromium drives the same page in test_privacy_browser.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import SQLModel, col
from starlette.applications import Starlette

from app import create_app
from database import Database
from models import AuditEntry, Consent, Organization, Persona, PrivacyRequest
from models.base import utcnow
from models.enums import Channel
from resolvers.ingest import ConsentData
from resolvers.notifier import LogNotifier
from routes.privacy import PrivacyPageConfig
from settings import Settings
from tests.factories import make_persona

PHONE, EMAIL = "+15415550123", "zebulon.q@example.com"
UNKNOWN_PHONE, UNKNOWN_EMAIL = "+15415550199", "nobody.here@example.com"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CODE = re.compile(r"code is (\d{6})")


def consent(channel: str, status: str, source: str = "IMPORT") -> ConsentData:
    return ConsentData(channel=channel, status=status, source=source)


@dataclass
class PrivacyPage:
    """A customer's browser on the privacy page: it keeps the cookie and sends the form's token back."""

    http: httpx.AsyncClient
    app: Starlette
    slug: str = "acme"
    token: str | None = None

    async def open(self, path: str = "") -> httpx.Response:
        response = await self.http.get(f"/privacy/{self.slug}{path}")
        self._keep_token(response)
        return response

    async def post(self, path: str = "", **fields: str) -> httpx.Response:
        if self.token is None:
            await self.open(path)
        response = await self.http.post(f"/privacy/{self.slug}{path}", data={"csrf_token": self.token, **fields})
        self._keep_token(response)
        return response

    async def submit(self, action: str, phone: str = "", email: str = "") -> httpx.Response:
        return await self.post("", phone=phone, email=email, action=action)

    async def confirm(self, code: str, phone: str = "", email: str = "") -> httpx.Response:
        return await self.post("/confirm", phone=phone, email=email, code=code)

    def codes_sent_to(self, to: str) -> list[str]:
        notifier = self.app.state.notifier
        assert isinstance(notifier, LogNotifier)
        return [m for n in notifier.sent if n.to == to for m in CODE.findall(n.body)]

    def _keep_token(self, response: httpx.Response) -> None:
        found = TOKEN.search(response.text)
        if found:
            self.token = found.group(1)


def without_token(response: httpx.Response) -> str:
    return TOKEN.sub('name="csrf_token" value=""', response.text)


@pytest.fixture
async def privacy_page(db: Database, settings: Settings, org: Organization) -> AsyncIterator[PrivacyPage]:
    app = create_app(settings, database=db, notifier=LogNotifier())
    app.state.privacy_page = PrivacyPageConfig(response_floor_seconds=0.0, ip_limit=1000, contact_limit=1000)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield PrivacyPage(http, app)


async def consents_of(db: Database, org: Organization, persona_id: Any) -> dict[str, tuple[str, str]]:
    async with db.session() as session:
        found = await session.execute(
            select(Consent).where(col(Consent.org_id) == org.id, col(Consent.persona_id) == persona_id)
        )
        return {c.channel: (c.status, c.source) for c in found.scalars()}


async def all_of(db: Database, model: type[SQLModel]) -> list[Any]:
    async with db.session() as session:
        return list((await session.execute(select(model))).scalars())


async def persona_row(db: Database, org: Organization, persona_id: Any) -> Persona:
    async with db.session() as session:
        found = await session.get(Persona, (org.id, persona_id))
        assert found is not None
        return found


# The form -------------------------------------------------------------------------------


async def test_the_form_carries_a_csrf_token_a_cookie_and_security_headers(privacy_page: PrivacyPage) -> None:
    response = await privacy_page.open()

    assert response.status_code == 200
    assert "Acme Cannabis Co." in response.text
    assert privacy_page.token
    assert "privacy_csrf" in response.cookies
    assert "httponly" in response.headers["set-cookie"].lower()
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_an_unknown_organization_is_not_found(privacy_page: PrivacyPage) -> None:
    privacy_page.slug = "no-such-org"
    assert (await privacy_page.open()).status_code == 404


@pytest.mark.parametrize("token", ["", "forged", "other-cookie"])
async def test_a_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    db: Database, org: Organization, privacy_page: PrivacyPage, token: str
) -> None:
    persona = await make_persona(db, org, phone=PHONE, consents=[consent("TEXT", "OPTED_IN")])
    await privacy_page.open()
    if token == "other-cookie":
        other = httpx.AsyncClient(transport=httpx.ASGITransport(app=privacy_page.app), base_url="http://test")
        async with other:
            token = TOKEN.findall((await other.get("/privacy/acme")).text)[0]
    privacy_page.token = token

    response = await privacy_page.submit("OPT_OUT", phone=PHONE)

    assert response.status_code == 403
    assert await all_of(db, PrivacyRequest) == []
    assert (await consents_of(db, org, persona.id))["TEXT"] == ("OPTED_IN", "IMPORT")


@pytest.mark.parametrize(
    ("phone", "email", "message"),
    [
        ("", "", "Give a phone number or an email."),
        ("12", "", "That phone number does not look right."),
        ("", "nope", "That email does not look right."),
    ],
)
async def test_a_contact_that_is_not_usable_is_asked_again(
    db: Database, privacy_page: PrivacyPage, phone: str, email: str, message: str
) -> None:
    response = await privacy_page.submit("OPT_OUT", phone=phone, email=email)

    assert response.status_code == 400
    assert message in response.text
    assert await all_of(db, PrivacyRequest) == []


# Opt-out ----------------------------------------------------------------------------------


async def test_opt_out_applies_at_once_and_is_audited_without_the_contact(
    db: Database, org: Organization, privacy_page: PrivacyPage
) -> None:
    persona = await make_persona(
        db, org, phone=PHONE, email=EMAIL, consents=[consent("TEXT", "OPTED_IN"), consent("EMAIL", "OPTED_IN")]
    )

    response = await privacy_page.submit("OPT_OUT", phone="(541) 555-0123")

    assert response.status_code == 200
    assert "it will get no more messages from us" in response.text
    assert await consents_of(db, org, persona.id) == {c.value: ("OPTED_OUT", "PRIVACY_REQUEST") for c in Channel}
    (request,) = await all_of(db, PrivacyRequest)
    assert (request.action, request.status, request.personas_affected) == ("OPT_OUT", "COMPLETED", 1)
    assert request.requested_by == "public page"
    (audit,) = await all_of(db, AuditEntry)
    assert (audit.actor, audit.operation, audit.outcome) == ("public page", "privacyPage.optOut", "OK")
    assert PHONE not in audit.target_ids + audit.detail
    assert PHONE[2:] not in audit.target_ids + audit.detail


# Deletion by code ------------------------------------------------------------------------


async def test_deletion_runs_only_once_the_code_comes_back(
    db: Database, org: Organization, privacy_page: PrivacyPage
) -> None:
    persona = await make_persona(db, org, phone=PHONE, email=EMAIL, first_name="Zebulon")

    asked = await privacy_page.submit("DELETE_DATA", phone=PHONE, email=EMAIL)

    assert asked.status_code == 200
    assert "Enter it with the same phone and/or email" in asked.text
    (code,) = privacy_page.codes_sent_to(PHONE)
    assert privacy_page.codes_sent_to(EMAIL) == [code]
    (pending,) = await all_of(db, PrivacyRequest)
    assert (pending.status, pending.personas_affected, pending.completed_at) == ("PENDING_VERIFICATION", 0, None)
    assert code not in (pending.code_hash or "")
    assert (await persona_row(db, org, persona.id)).first_name == "Zebulon"

    wrong = await privacy_page.confirm(f"{(int(code) + 1) % 1_000_000:06d}", phone=PHONE, email=EMAIL)
    assert wrong.status_code == 400
    assert "That code is not right" in wrong.text
    assert (await persona_row(db, org, persona.id)).erased_at is None

    done = await privacy_page.confirm(code, phone="541 555 0123", email=EMAIL.upper())

    assert done.status_code == 200
    assert "it has been deleted" in done.text
    erased = await persona_row(db, org, persona.id)
    assert (erased.first_name, erased.phone, erased.email) == (None, None, None)
    assert erased.erased_at is not None
    (request,) = await all_of(db, PrivacyRequest)
    assert (request.status, request.personas_affected, request.attempts) == ("COMPLETED", 1, 1)
    outcomes = [(a.operation, a.outcome) for a in await all_of(db, AuditEntry)]
    assert sorted(outcomes) == [
        ("privacyPage.confirmDeletion", "OK"),
        ("privacyPage.confirmDeletion", "REFUSED"),
        ("privacyPage.requestDeletion", "PENDING"),
    ]
    # A used code is gone.
    again = await privacy_page.confirm(code, phone=PHONE, email=EMAIL)
    assert again.status_code == 400


async def test_the_code_must_come_with_the_same_contact(
    db: Database, org: Organization, privacy_page: PrivacyPage
) -> None:
    persona = await make_persona(db, org, phone=PHONE, email=EMAIL)
    await privacy_page.submit("DELETE_DATA", phone=PHONE, email=EMAIL)
    (code,) = privacy_page.codes_sent_to(PHONE)

    response = await privacy_page.confirm(code, phone=PHONE)

    assert response.status_code == 400
    assert (await persona_row(db, org, persona.id)).erased_at is None


async def test_a_code_dies_after_five_wrong_attempts(
    db: Database, org: Organization, privacy_page: PrivacyPage
) -> None:
    persona = await make_persona(db, org, phone=PHONE)
    await privacy_page.submit("DELETE_DATA", phone=PHONE)
    (code,) = privacy_page.codes_sent_to(PHONE)
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"

    for _ in range(5):
        assert (await privacy_page.confirm(wrong, phone=PHONE)).status_code == 400
    late = await privacy_page.confirm(code, phone=PHONE)

    assert late.status_code == 400
    assert (await persona_row(db, org, persona.id)).erased_at is None
    (request,) = await all_of(db, PrivacyRequest)
    assert (request.status, request.attempts, request.code_hash) == ("PENDING_VERIFICATION", 5, None)


async def test_a_code_expires(db: Database, org: Organization, privacy_page: PrivacyPage) -> None:
    persona = await make_persona(db, org, phone=PHONE)
    await privacy_page.submit("DELETE_DATA", phone=PHONE)
    (code,) = privacy_page.codes_sent_to(PHONE)
    async with db.session() as session, session.begin():
        await session.execute(update(PrivacyRequest).values(code_expires_at=utcnow()))

    response = await privacy_page.confirm(code, phone=PHONE)

    assert response.status_code == 400
    assert (await persona_row(db, org, persona.id)).erased_at is None


async def test_a_new_code_replaces_the_older_one(db: Database, org: Organization, privacy_page: PrivacyPage) -> None:
    persona = await make_persona(db, org, phone=PHONE)
    await privacy_page.submit("DELETE_DATA", phone=PHONE)
    await privacy_page.submit("DELETE_DATA", phone=PHONE)
    old, new = privacy_page.codes_sent_to(PHONE)

    if old != new:
        assert (await privacy_page.confirm(old, phone=PHONE)).status_code == 400
    assert (await privacy_page.confirm(new, phone=PHONE)).status_code == 200
    assert (await persona_row(db, org, persona.id)).erased_at is not None


# What the page gives away ------------------------------------------------------------


@pytest.mark.parametrize("action", ["OPT_OUT", "DELETE_DATA"])
async def test_answers_are_identical_for_a_known_and_an_unknown_contact(
    db: Database, org: Organization, privacy_page: PrivacyPage, action: str
) -> None:
    await make_persona(db, org, phone=PHONE, email=EMAIL, consents=[consent("TEXT", "OPTED_IN")])

    known = await privacy_page.submit(action, phone=PHONE, email=EMAIL)
    unknown = await privacy_page.submit(action, phone=UNKNOWN_PHONE, email=UNKNOWN_EMAIL)

    assert known.status_code == unknown.status_code == 200
    assert without_token(known) == without_token(unknown)
    assert dict(known.headers) == dict(unknown.headers)
    if action == "DELETE_DATA":
        (code,) = privacy_page.codes_sent_to(PHONE)
        (other,) = privacy_page.codes_sent_to(UNKNOWN_PHONE)
        wrong_known = await privacy_page.confirm("000000" if code != "000000" else "111111", phone=PHONE, email=EMAIL)
        wrong_unknown = await privacy_page.confirm(
            "000000" if other != "000000" else "111111", phone=UNKNOWN_PHONE, email=UNKNOWN_EMAIL
        )
        assert without_token(wrong_known) == without_token(wrong_unknown)
        done_known = await privacy_page.confirm(code, phone=PHONE, email=EMAIL)
        done_unknown = await privacy_page.confirm(other, phone=UNKNOWN_PHONE, email=UNKNOWN_EMAIL)
        assert done_known.status_code == done_unknown.status_code == 200
        assert without_token(done_known) == without_token(done_unknown)


async def test_answers_take_no_less_than_the_floor_for_known_and_unknown_contacts(
    db: Database, org: Organization, privacy_page: PrivacyPage
) -> None:
    privacy_page.app.state.privacy_page = PrivacyPageConfig(response_floor_seconds=1.0)
    await make_persona(db, org, phone=PHONE, consents=[consent("TEXT", "OPTED_IN")])
    await privacy_page.open()

    timings = []
    for phone in (PHONE, UNKNOWN_PHONE):
        started = time.monotonic()
        await privacy_page.submit("OPT_OUT", phone=phone)
        timings.append(time.monotonic() - started)

    assert min(timings) >= 1.0
    assert abs(timings[0] - timings[1]) < 0.5


async def test_posts_are_rate_limited_per_contact(privacy_page: PrivacyPage) -> None:
    privacy_page.app.state.privacy_page = PrivacyPageConfig(response_floor_seconds=0.0, contact_limit=2)

    answers = [(await privacy_page.submit("OPT_OUT", phone=PHONE)).status_code for _ in range(3)]
    other = await privacy_page.submit("OPT_OUT", phone=UNKNOWN_PHONE)

    assert answers == [200, 200, 429]
    assert "Too many requests" in (await privacy_page.submit("OPT_OUT", phone="541-555-0123")).text
    assert other.status_code == 200


async def test_posts_are_rate_limited_per_client_address(db: Database, privacy_page: PrivacyPage) -> None:
    privacy_page.app.state.privacy_page = PrivacyPageConfig(response_floor_seconds=0.0, ip_limit=3)

    answers = [(await privacy_page.submit("OPT_OUT", email=f"person{i}@example.com")).status_code for i in range(4)]

    assert answers == [200, 200, 200, 429]
    assert len(await all_of(db, PrivacyRequest)) == 3
