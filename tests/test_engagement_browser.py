"""The customer's pages in headless Chromium: the tracking pixel end to end on
a second origin, the wallet page with valid, expired and forged tokens, and
the referral link into the sign-up form.

Sync Playwright only (see tests/browser.py): the app runs in uvicorn on a
thread (tests/live_server.py), the "organization's website" is a tiny
http.server on another port, and the data is made in a thread of its own.
"""

from __future__ import annotations

import dataclasses
import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from itsdangerous import TimestampSigner
from playwright.sync_api import Browser, Page, ViewportSize, expect
from sqlalchemy import update
from sqlmodel import col

from database import Database
from models import Discount, Persona
from models.base import utcnow
from models.enums import PointsEntryKind
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.ingest import ContactData, ingest_one
from resolvers.links import persona_token
from resolvers.organizations import create_organization
from resolvers.points import post_entry
from schema.ids import to_global_id
from settings import Settings
from tests import browser as chromium
from tests import live_server
from tests.browser import on_database
from tests.factories import empty_tables
from tests.live_server import Live

pytestmark = pytest.mark.browser

# The module-scoped Chromium, a fresh page per test, and the app served for the module.
browser = chromium.browser
page = chromium.page
live = live_server.live

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PIXEL_EVENTS = """
query ($id: ID!) {
  persona(id: $id) { history { pixelEvents(first: 20) { totalCount nodes { site event url } } } }
}
"""
MOBILE: ViewportSize = {"width": 390, "height": 844}


@dataclass(frozen=True)
class World:
    org_id: uuid.UUID
    persona_id: uuid.UUID
    persona_gid: str
    owner_key: str


async def _make_world(db: Database) -> World:
    await empty_tables(db)
    # Committed first: on PostgreSQL persona numbers are claimed in a transaction of their own.
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug="acme", name="Acme Cannabis Co.")
        org.show_pin_in_wallets = True
        org.referral_points_enabled, org.referral_points = True, 50
    async with db.session() as session, session.begin():
        session.add(org)
        made = await ingest_one(
            session,
            org,
            "pos",
            ContactData(first_name="Dana", phone="+14155550123", loyalty_member=True),
            actor="test",
            path=[],
        )
        assert made.persona is not None
        persona = made.persona
        await session.execute(update(Persona).where(col(Persona.id) == persona.id).values(wallet_pin="4821"))
        await post_entry(session, org_id=org.id, persona_id=persona.id, kind=PointsEntryKind.LEGACY_IMPORT, delta=1250)
        session.add_all(
            [
                Discount(org_id=org.id, name="$5 off your order", points_cost=500),
                Discount(org_id=org.id, name="Free pre-roll", points_cost=2000),
                Discount(
                    org_id=org.id, name="Last summer's deal", points_cost=100, ends_at=utcnow().replace(year=2020)
                ),
            ]
        )
        key = await issue_key(session, org_id=org.id, role=Role.OWNER, name="browser test")
        return World(org.id, persona.id, to_global_id("Persona", persona.id), key.plaintext)


@pytest.fixture
def world(live: Live) -> World:
    return on_database(live.settings, _make_world)


def token(live: Live, world: World, purpose: str, settings: Settings | None = None) -> str:
    return persona_token(settings or live.settings, world.org_id, world.persona_id, purpose)


def pixel_events(live: Live, world: World) -> dict[str, Any]:
    response = httpx.post(
        f"{live.url}/graphql",
        json={"query": PIXEL_EVENTS, "variables": {"id": world.persona_gid}},
        headers={"Authorization": f"Bearer {world.owner_key}"},
    )
    body = response.json()
    assert not body.get("errors"), body
    events: dict[str, Any] = body["data"]["persona"]["history"]["pixelEvents"]
    return events


# ---------------------------------------------------------------- the organization's own website


SITE_PAGE = """<!doctype html>
<html><head><title>{title}</title>
<script src="{app}/px.js" data-org="acme" async></script></head>
<body><h1>{title}</h1>
<button id="offer" onclick="window.personagraph.track('clicked_offer')">Show me the deal</button>
</body></html>
"""


@pytest.fixture(scope="module")
def site(live: Live) -> Iterator[str]:
    """A second origin that includes the pixel script, as a dispensary's website would."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            title = "Menu" if self.path.startswith("/menu") else "Deals"
            body = SITE_PAGE.format(title=title, app=live.url).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def is_pixel_post(response: Any) -> bool:
    return "/px/acme" in response.url and response.request.method == "POST"


def test_the_pixel_reports_page_views_and_named_events_that_show_on_the_card(
    live: Live, world: World, site: str, page: Page
) -> None:
    # When the customer follows a campaign link carrying their pixel token to the organization's site
    with page.expect_response(is_pixel_post) as first:
        page.goto(f"{site}/menu?pg={token(live, world, 'pixel')}&utm_source=sms")
    assert first.value.status == 204
    # Then the token leaves the address bar and stays in a first-party cookie
    assert page.url == f"{site}/menu?utm_source=sms"
    assert [c["name"] for c in page.context.cookies(site)] == ["_pg"]
    # When they click something the page tracks, then open another page without the token
    with page.expect_response(is_pixel_post) as clicked:
        page.click("#offer")
    assert clicked.value.status == 204
    with page.expect_response(is_pixel_post) as second:
        page.goto(f"{site}/deals")
    assert second.value.status == 204
    # Then all three show on the card's History tab, newest first, without the token
    events = pixel_events(live, world)
    assert events["totalCount"] == 3
    assert [(e["site"], e["event"], e["url"]) for e in events["nodes"]] == [
        ("127.0.0.1", "page_view", f"{site}/deals"),
        ("127.0.0.1", "clicked_offer", f"{site}/menu?utm_source=sms"),
        ("127.0.0.1", "page_view", f"{site}/menu?utm_source=sms"),
    ]


def test_a_visitor_without_a_token_is_not_tracked(live: Live, world: World, site: str, page: Page) -> None:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(f"{site}/menu")
    page.wait_for_load_state("networkidle")
    page.click("#offer")
    page.wait_for_load_state("networkidle")
    assert posts == []
    assert pixel_events(live, world)["totalCount"] == 0


def test_a_forged_pixel_token_is_refused(live: Live, world: World, site: str, page: Page) -> None:
    forged = token(live, world, "pixel", dataclasses.replace(live.settings, secret="not-the-server-secret"))
    with page.expect_response(is_pixel_post) as refused:
        page.goto(f"{site}/menu?pg={forged}")
    assert refused.value.status == 403
    assert pixel_events(live, world)["totalCount"] == 0


# ---------------------------------------------------------------- the wallet page


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=MOBILE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_the_wallet_page_shows_points_rewards_pin_and_referral_link(
    live: Live, world: World, phone: Page, backend: str
) -> None:
    problems: list[str] = []
    phone.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    # When the customer opens their wallet link on a phone
    response = phone.goto(f"{live.url}/wallet/{token(live, world, 'wallet')}")
    assert response is not None
    assert response.status == 200
    # Then it greets them and shows their points, PIN and the active rewards with progress bars
    expect(phone.get_by_role("heading", level=1)).to_have_text("Hi Dana")
    expect(phone.get_by_test_id("points")).to_have_text("1,250")
    expect(phone.get_by_test_id("pin")).to_have_text("4821")
    offers = phone.get_by_test_id("offer")
    expect(offers).to_have_count(2)
    expect(offers.nth(0)).to_contain_text("$5 off your order")
    expect(offers.nth(0)).to_contain_text("Ready to redeem")
    expect(offers.nth(0).locator("progress")).to_have_attribute("value", "100")
    expect(offers.nth(1)).to_contain_text("Free pre-roll")
    expect(offers.nth(1)).to_contain_text("750 more points to go")
    expect(offers.nth(1).locator("progress")).to_have_attribute("value", "62")
    expect(phone.locator("body")).to_contain_text("you earn 50 points")
    referral = phone.get_by_test_id("referral-link").input_value()
    assert referral.startswith(f"{live.url}/r/")
    # And its own styles ran under the page's strict content security policy
    assert phone.evaluate("getComputedStyle(document.querySelector('.points')).color") == "rgb(255, 255, 255)"
    assert problems == []
    headers = response.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / f"wallet-{backend}.png"), full_page=True)


def test_expired_and_forged_wallet_links_get_a_plain_page_that_reveals_nothing(
    live: Live, world: World, phone: Page, backend: str
) -> None:
    four_hundred_days_ago = int(time.time()) - 400 * 86_400
    with mock.patch.object(TimestampSigner, "get_timestamp", return_value=four_hundred_days_ago):
        expired = token(live, world, "wallet")
    forged = token(live, world, "wallet", dataclasses.replace(live.settings, secret="not-the-server-secret"))
    referral_not_wallet = token(live, world, "referral")
    for bad in (expired, forged, referral_not_wallet, "garbage"):
        response = phone.goto(f"{live.url}/wallet/{bad}")
        assert response is not None
        assert response.status == 404
        expect(phone.get_by_role("heading", level=1)).to_have_text("This link is not valid")
        body = phone.locator("body").inner_text()
        assert "Dana" not in body
        assert "1,250" not in body
        assert "Acme" not in body
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / f"wallet-invalid-{backend}.png"))


def test_the_referral_link_opens_the_sign_up_form_with_the_referrer(live: Live, world: World, page: Page) -> None:
    referral = token(live, world, "referral")
    page.goto(f"{live.url}/r/{referral}")
    landed = urlsplit(page.url)
    assert landed.path == "/signup/acme"
    assert parse_qs(landed.query)["ref"] == [referral]
