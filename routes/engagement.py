"""The customer's own pages and the tracking pixel.

    GET  /px.js             the pixel script for the organization's websites
    POST /px/{org_slug}     what the script reports (CORS, rate-limited, size-bounded)
    GET  /wallet/{token}    the customer's wallet: points, rewards, PIN, referral link
    GET  /r/{token}         a referral link: on to the sign-up form with the referrer

The pages answer an invalid, expired or forged token with the same plain page
and status, whatever was wrong with it: they reveal nothing.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from database import Database
from models.base import utcnow
from resolvers.engagement import pixel_holder, record_pixel_event, referral_signup_path, wallet_view
from settings import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)
PIXEL_SCRIPT = (TEMPLATES_DIR / "px.js").read_bytes()

# A pixel report is a token and a few short strings; anything bigger is not one.
PIXEL_MAX_BODY = 4096
# Per client address and organization: a busy visitor stays well below it.
PIXEL_EVENTS_PER_MINUTE = 60
# Longer than any token this server makes; spares the signature check on junk.
MAX_TOKEN_LENGTH = 512

T = TypeVar("T")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
    "Vary": "Origin",
}


def page_headers(nonce: str) -> dict[str, str]:
    """For the HTML pages: nothing but their own nonce'd style and script runs; no token leaks as a Referer."""
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex, nofollow",
    }


def _page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    nonce = secrets.token_urlsafe(16)
    return templates.TemplateResponse(
        request, template, {**context, "nonce": nonce}, status_code=status_code, headers=page_headers(nonce)
    )


def _invalid_link(request: Request) -> Response:
    return _page(request, "link_invalid.html", {}, status_code=404)


def _state(request: Request) -> tuple[Database, Settings]:
    return request.app.state.db, request.app.state.settings


async def _by_token(request: Request, find: Callable[[AsyncSession, Settings, str], Awaitable[T | None]]) -> T | None:
    """What the path's token opens; None for an overlong token, as for any invalid one."""
    token = request.path_params["token"]
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    db, settings = _state(request)
    async with db.session() as session:
        return await find(session, settings, token)


async def wallet_page(request: Request) -> Response:
    view = await _by_token(request, wallet_view)
    if view is None:
        return _invalid_link(request)
    return _page(request, "wallet.html", {"view": view})


async def referral_link(request: Request) -> Response:
    target = await _by_token(request, referral_signup_path)
    if target is None:
        return _invalid_link(request)
    return RedirectResponse(
        target, status_code=303, headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
    )


async def pixel_script(_: Request) -> Response:
    return Response(
        PIXEL_SCRIPT,
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@dataclass
class RateLimiter:
    """A token bucket per key: `rate` events per `per` seconds, bursts up to `rate`."""

    rate: int
    per: float = 60.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 50_000

    def __post_init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> float:
        """0 when allowed; otherwise the seconds until the next event would be."""
        now = self.clock()
        refill = self.rate / self.per
        tokens, last = self._buckets.get(key, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - last) * refill)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / refill
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            # Forget the buckets that have refilled: they hold no state worth keeping.
            self._buckets = {k: (t, at) for k, (t, at) in self._buckets.items() if t + (now - at) * refill < self.rate}
        self._buckets[key] = (tokens - 1, now)
        return 0.0


def pixel_limiter(request: Request) -> RateLimiter:
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "pixel_limiter", None)
    if limiter is None:
        limiter = state.pixel_limiter = RateLimiter(PIXEL_EVENTS_PER_MINUTE)
    return limiter


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes the limit (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _without_token(url: str) -> str:
    """The page address without the pg token: the history never keeps a token."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "pg"]
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True)
class PixelReport:
    token: str
    event: str
    url: str | None
    site: str


def _parse_report(body: bytes, origin: str | None) -> PixelReport | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    token, event, url, site = (data.get(k) for k in ("token", "event", "url", "site"))
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    if not isinstance(event, str) or not event.strip() or len(event) > 200:
        return None
    if url is not None and (not isinstance(url, str) or len(url) > 2000):
        return None
    # The browser sets Origin; the page's own claim is the fallback (e.g. a beacon without one).
    if origin and origin != "null":
        site = urlsplit(origin).hostname
    if not isinstance(site, str) or not site.strip() or len(site) > 300:
        return None
    return PixelReport(token=token, event=event.strip(), url=_without_token(url) if url else None, site=site.strip())


def _cors(response: Response) -> Response:
    response.headers.update(CORS_HEADERS)
    return response


async def pixel_event(request: Request) -> Response:
    if request.method == "OPTIONS":
        return _cors(Response(status_code=204))
    slug = request.path_params["org_slug"]
    client = request.client.host if request.client else "unknown"
    wait = pixel_limiter(request).allow(f"{slug} {client}")
    if wait:
        return _cors(
            PlainTextResponse("Too many events.", status_code=429, headers={"Retry-After": str(math.ceil(wait))})
        )
    body = await _bounded_body(request, PIXEL_MAX_BODY)
    if body is None:
        return _cors(PlainTextResponse("Too large.", status_code=413))
    report = _parse_report(body, request.headers.get("origin"))
    if report is None:
        return _cors(PlainTextResponse("Not a pixel event.", status_code=400))
    db, settings = _state(request)
    async with db.session() as session, session.begin():
        holder = await pixel_holder(session, settings, slug, report.token)
        if holder is not None:
            await record_pixel_event(
                session,
                holder.org.id,
                holder.persona,
                site=report.site,
                event=report.event,
                url=report.url,
                occurred_at=utcnow(),
            )
    if holder is None:
        return _cors(PlainTextResponse("Not a valid token of this organization.", status_code=403))
    return _cors(Response(status_code=204))


routes = [
    Route("/px.js", pixel_script, methods=["GET"]),
    Route("/px/{org_slug}", pixel_event, methods=["POST", "OPTIONS"]),
    Route("/wallet/{token}", wallet_page, methods=["GET"]),
    Route("/r/{token}", referral_link, methods=["GET"]),
]
