"""The loyalty sign-up form in headless Chromium: fill it in, sign, join, and
find the new member through GraphQL; errors next to their fields; the CSRF
token, the rate limit, and an unknown organization.

Sync Playwright only (see tests/browser.py): the app runs in uvicorn on a
thread (tests/live_server.py), and the data is made in a thread of its own.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlmodel import col

from database import Database
from models import SignupSubmission
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.organizations import create_organization
from routes.forms import SlidingWindowLimiter
from tests import browser as chromium
from tests import live_server
from tests.browser import on_database
from tests.live_server import Live

pytestmark = pytest.mark.browser

# The module-scoped Chromium, a fresh page per test, and the app served for the module.
browser = chromium.browser
page = chromium.page
live = live_server.live

FIND = """
query ($q: String!) {
  personas(query: $q) {
    totalCount
    nodes {
      number firstName lastName email phone birthday loyaltyMember loyaltySignupAt
      sourcedFrom { kind integration }
      optIns { channel status source }
      traits { browser ipAddress signups { formName url submittedAt hasSignature } }
    }
  }
}
"""


@dataclass(frozen=True)
class Shop:
    slug: str
    owner_key: str


async def _make_shop(db: Database) -> Shop:
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug=f"leaf-{uuid.uuid4().hex[:8]}", name="Green Leaf")
        key = await issue_key(session, org_id=org.id, role=Role.OWNER, name="browser test")
    return Shop(org.slug, key.plaintext)


@pytest.fixture
def shop(live: Live) -> Shop:
    """A fresh organization (and a fresh rate limit) per test."""
    live.app.state.signup_limiter = None
    return on_database(live.settings, _make_shop)


def find(live: Live, shop: Shop, query: str) -> dict[str, Any]:
    response = httpx.post(
        f"{live.url}/graphql",
        json={"query": FIND, "variables": {"q": query}},
        headers={"Authorization": f"Bearer {shop.owner_key}"},
    )
    body = response.json()
    assert not body.get("errors"), body
    found: dict[str, Any] = body["data"]["personas"]
    return found


def sign(page: Page) -> None:
    pad = page.locator("#signature-pad")
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.7)
    page.mouse.down()
    for step in range(1, 16):
        x = box["x"] + 20 + step * (box["width"] - 60) / 15
        y = box["y"] + box["height"] * (0.7 - 0.4 * ((step % 4) / 3))
        page.mouse.move(x, y, steps=3)
    page.mouse.up()


def test_a_customer_signs_up_and_staff_find_the_new_member(live: Live, shop: Shop, page: Page) -> None:
    # Given the sign-up form of the shop
    page.goto(f"{live.url}/signup/{shop.slug}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Join Green Leaf rewards")

    # When the customer fills it in, ticks text consent, signs and joins
    page.get_by_label("First name").fill("Ann")
    page.get_by_label("Last name").fill("Lee")
    page.get_by_label("Mobile phone").fill("(415) 867-5309")
    page.get_by_label("Email", exact=True).fill("Ann.Lee@Example.com")
    page.get_by_label("Birthday").fill("1990-04-20")
    page.get_by_label("Text me deals and rewards").check()
    sign(page)
    page.get_by_role("button", name="Join").click()

    # Then they see the confirmation
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to Green Leaf rewards, Ann!")
    expect(page.locator("#confirmation")).to_contain_text("You're signed up")

    # And staff find the new loyalty member, with the submission and its signature
    found = find(live, shop, "ann.lee@example.com")
    assert found["totalCount"] == 1
    (persona,) = found["nodes"]
    assert (persona["firstName"], persona["lastName"]) == ("Ann", "Lee")
    assert (persona["phone"], persona["email"], persona["birthday"]) == (
        "+14158675309",
        "ann.lee@example.com",
        "1990-04-20",
    )
    assert persona["loyaltyMember"] is True
    assert persona["loyaltySignupAt"] is not None
    assert persona["sourcedFrom"] == {"kind": "LOYALTY", "integration": None}
    consents = {o["channel"]: (o["status"], o["source"]) for o in persona["optIns"]}
    assert consents["TEXT"] == ("OPTED_IN", "CUSTOMER")
    assert consents["LOYALTY"] == ("OPTED_IN", "CUSTOMER")
    assert consents["EMAIL"] == ("UNKNOWN", None), "an unticked box is no consent"
    traits = persona["traits"]
    assert "Chrome" in traits["browser"]
    assert traits["ipAddress"] == "127.0.0.1"
    (submission,) = traits["signups"]
    assert submission["formName"] == "Loyalty sign-up"
    assert submission["url"] == f"{live.url}/signup/{shop.slug}"
    assert submission["hasSignature"] is True
    signatures = on_database(live.settings, _signatures)
    assert any(s.startswith("data:image/png;base64,iVBORw0KGgo") for s in signatures)


async def _signatures(db: Database) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(select(col(SignupSubmission.signature)))
        return [s for s in rows.scalars() if s]


def test_problems_show_next_to_their_fields_and_what_was_typed_stays(live: Live, shop: Shop, page: Page) -> None:
    page.goto(f"{live.url}/signup/{shop.slug}")
    page.get_by_label("Mobile phone").fill("12345")
    page.get_by_label("Email", exact=True).fill("ann@@example")
    page.get_by_label("Email me deals and rewards").check()
    sign(page)

    page.get_by_role("button", name="Join").click()

    expect(page.locator("#first_name-error")).to_have_text("Tell us your first name.")
    expect(page.locator("#phone-error")).to_have_text("That phone number does not look right.")
    expect(page.locator("#email-error")).to_have_text("That email does not look right.")
    expect(page.get_by_label("Mobile phone")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Mobile phone")).to_have_value("12345")
    expect(page.get_by_label("Email me deals and rewards")).to_be_checked()

    # When the customer corrects them (the signature drawn before is kept), they join
    page.get_by_label("First name").fill("Bea")
    page.get_by_label("Mobile phone").fill("646-783-0134")
    page.get_by_label("Email", exact=True).fill("bea@example.com")
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to Green Leaf rewards, Bea!")
    (persona,) = find(live, shop, "bea@example.com")["nodes"]
    assert persona["traits"]["signups"][0]["hasSignature"] is True
    assert {o["channel"]: o["status"] for o in persona["optIns"]}["EMAIL"] == "OPTED_IN"


def test_signing_up_again_updates_the_same_persona_and_a_signature_is_optional(
    live: Live, shop: Shop, page: Page
) -> None:
    for last_name in ("Lee", "Lee-Park"):
        page.goto(f"{live.url}/signup/{shop.slug}")
        page.get_by_label("First name").fill("Ann")
        page.get_by_label("Last name").fill(last_name)
        page.get_by_label("Email", exact=True).fill("ann@example.com")
        page.get_by_role("button", name="Join").click()
        expect(page.locator("#confirmation")).to_be_visible()

    found = find(live, shop, "ann@example.com")
    assert found["totalCount"] == 1
    assert found["nodes"][0]["lastName"] == "Lee-Park"
    assert [s["hasSignature"] for s in found["nodes"][0]["traits"]["signups"]] == [False, False]


def test_a_form_without_its_csrf_token_is_refused(live: Live, shop: Shop, page: Page) -> None:
    page.goto(f"{live.url}/signup/{shop.slug}")
    page.get_by_label("First name").fill("Ann")
    page.get_by_label("Email", exact=True).fill("ann@example.com")
    page.locator("input[name=csrf_token]").evaluate("input => { input.value = 'forged'; }")

    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Join").click()

    assert answer.value.status == 403
    expect(page.locator("#form-error")).to_have_text("This form has expired. Please fill it in again.")
    expect(page.get_by_label("First name")).to_have_value("Ann")
    assert find(live, shop, "ann@example.com")["totalCount"] == 0


def test_sign_ups_are_rate_limited_per_address(live: Live, shop: Shop) -> None:
    live.app.state.signup_limiter = SlidingWindowLimiter(limit=3, window=600)
    with httpx.Client(base_url=live.url) as client:
        form = client.get(f"/signup/{shop.slug}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        statuses = [
            client.post(
                f"/signup/{shop.slug}",
                data={"csrf_token": token.group(1), "first_name": "Cal", "email": f"cal{n}@example.com"},
            ).status_code
            for n in range(4)
        ]
        refused = client.post(f"/signup/{shop.slug}", data={"csrf_token": token.group(1)})

    assert statuses == [200, 200, 200, 429]
    assert "Too many sign-ups from here" in refused.text
    assert find(live, shop, "cal3@example.com")["totalCount"] == 0


def test_every_answer_carries_security_headers(live: Live, shop: Shop) -> None:
    response = httpx.get(f"{live.url}/signup/{shop.slug}")

    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'nonce-" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "HttpOnly" in response.headers["set-cookie"]
    assert "SameSite=strict" in response.headers["set-cookie"]


def test_an_unknown_organization_gets_a_not_found_page(live: Live, page: Page) -> None:
    response = page.goto(f"{live.url}/signup/no-such-shop")

    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert page.locator("form").count() == 0
