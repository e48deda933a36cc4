"""The pixel endpoint: reports with a valid pixel token are stored on the persona,
CORS, refused tokens and bodies, the per-client rate limit, and the pixel script."""

from __future__ import annotations

import json
from typing import Any

import httpx
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select
from sqlmodel import col

from app import create_app
from database import Database
from models import Organization, PixelEvent
from resolvers.links import persona_token
from routes.engagement import PIXEL_MAX_BODY, RateLimiter
from settings import Settings
from tests import events_support
from tests.conftest import GraphQLClient
from tests.events_support import PHONE, history
from tests.factories import MadePersona, make_persona

# Dana, the persona the events name: a fixture shared through tests/events_support.py.
dana = events_support.dana


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
