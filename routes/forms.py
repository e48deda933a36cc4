"""What the public form pages (routes/privacy.py, routes/signup.py) share.

- The organization named by the path's ``{org_slug}``.
- The form's text fields, read only when the declared body is within a bound.
- A CSRF token: itsdangerous-signed, bound to a random HttpOnly, SameSite=Strict
  cookie and to the organization, so a token is good for one browser and one form.
- A sliding-window rate limit per key (per client IP, per contact), in process
  memory: one limiter per app instance, kept on ``app.state`` under a name.
- The strict security headers every answer carries, around the page's own CSP.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from database import Database
from models import Organization
from models.tables import ORGANIZATIONS
from settings import Settings

CSRF_FIELD = "csrf_token"
TOO_LARGE = "That was too much to send."
EXPIRED = "This form has expired. Please fill it in again."
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


TunablesT = TypeVar("TunablesT")


def tunables(request: Request, name: str, kind: type[TunablesT]) -> TunablesT:
    """``app.state.<name>`` when a test set one of `kind` (a dataclass of defaults), else the defaults."""
    found = getattr(request.app.state, name, None)
    return found if isinstance(found, kind) else kind()


def security_headers(request: Request, policy: str) -> dict[str, str]:
    """The page's Content-Security-Policy and the headers every form page sends; HSTS over https."""
    headers = {"Content-Security-Policy": policy, **PAGE_HEADERS}
    if request.url.scheme == "https":
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def organization_of(request: Request) -> Organization | None:
    """The organization, detached: a read needs no write transaction (SQLite takes its lock at BEGIN)."""
    db: Database = request.app.state.db
    async with db.read() as conn:
        row = (
            await conn.execute(select(ORGANIZATIONS).where(ORGANIZATIONS.c.slug == request.path_params["org_slug"]))
        ).first()
    return None if row is None else Organization.model_validate(dict(row._mapping))


async def form_fields(request: Request, *, max_fields: int, max_bytes: int) -> dict[str, str] | None:
    """The form's text fields; None when the declared body is over `max_bytes` (a 413)."""
    if int(request.headers.get("content-length") or 0) > max_bytes:
        return None
    async with request.form(max_files=0, max_fields=max_fields, max_part_size=max_bytes) as form:
        return {key: value for key, value in form.items() if isinstance(value, str)}


# CSRF: a signed token in the form, bound to a random cookie ---------------------------------


@dataclass(frozen=True)
class FormToken:
    """The token a rendered form carries, and the cookie to set when the browser had none."""

    value: str
    new_cookie: str | None


def _cookie_digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Csrf:
    """One page's CSRF guard: its cookie's name and path, and its own signing salt."""

    cookie: str
    path: str
    salt: str

    def _serializer(self, request: Request) -> URLSafeTimedSerializer:
        settings: Settings = request.app.state.settings
        return URLSafeTimedSerializer(settings.secret, salt=self.salt)

    def issue(self, request: Request, slug: str) -> FormToken:
        existing = request.cookies.get(self.cookie)
        cookie = existing or secrets.token_urlsafe(32)
        signed = self._serializer(request).dumps({"c": _cookie_digest(cookie), "o": slug})
        return FormToken(str(signed), None if existing else cookie)

    def set_cookie(self, request: Request, response: Response, token: FormToken) -> None:
        if token.new_cookie is not None:
            response.set_cookie(
                self.cookie,
                token.new_cookie,
                path=self.path,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )

    def accepts(self, request: Request, slug: str, token: str, max_age: int) -> bool:
        cookie = request.cookies.get(self.cookie)
        if not cookie or not token:
            return False
        try:
            data = self._serializer(request).loads(token, max_age=max_age)
        except BadSignature:
            return False
        return isinstance(data, dict) and data.get("c") == _cookie_digest(cookie) and data.get("o") == slug


# Rate limits --------------------------------------------------------------------------------


@dataclass
class SlidingWindowLimiter:
    """At most ``limit`` hits per key in any ``window`` seconds."""

    limit: int
    window: float
    max_keys: int = 100_000
    hits: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if len(self.hits) > self.max_keys:
            self.hits = {k: q for k, q in self.hits.items() if q and q[-1] > now - self.window}
        queue = self.hits.setdefault(key, deque())
        while queue and queue[0] <= now - self.window:
            queue.popleft()
        if len(queue) >= self.limit:
            return False
        queue.append(now)
        return True


def app_limiter(request: Request, name: str, limit: int, window: float) -> SlidingWindowLimiter:
    """The app's limiter ``app.state.<name>``, made on first use (a test may replace or reset it)."""
    limiter = getattr(request.app.state, name, None)
    if not isinstance(limiter, SlidingWindowLimiter):
        limiter = SlidingWindowLimiter(limit, window)
        setattr(request.app.state, name, limiter)
    return limiter
