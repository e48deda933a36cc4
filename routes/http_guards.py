"""HTTP-level guards around every route: a bound on request bodies and the
security headers of HTML pages.

- BodyLimit: a body over `max_body_bytes` answers 413 before the route reads
  it (by Content-Length), or as soon as a streamed body passes the bound.
- SecurityHeaders: every response gets `X-Content-Type-Options: nosniff`;
  HTML pages also get a Content-Security-Policy, X-Frame-Options and
  Referrer-Policy unless the page set its own (the engagement and privacy
  pages set stricter, nonce-based ones).
- graphiql_policy: GraphiQL's page loads its scripts from unpkg and runs one
  inline script; its CSP allows exactly that (the inline script by hash).
"""

from __future__ import annotations

import base64
import hashlib
import re

import orjson
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_HTML_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HTML_HEADERS = {
    "content-security-policy": DEFAULT_HTML_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
GRAPHIQL_CDN = "https://unpkg.com"


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes.")


def _too_large(limit: int, status: int = 413) -> Response:
    message = f"The request body is larger than {limit} bytes." if status == 413 else "Malformed Content-Length."
    body = {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _too_large(self.max_bytes, 400)(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(self.max_bytes)(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in HTML_HEADERS.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def graphiql_policy(response: Response) -> Response:
    """GraphiQL's CSP: its CDN, its one inline script by hash, inline styles (React sets them)."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(bytes(response.body))
    )
    response.headers["content-security-policy"] = (
        f"default-src 'self'; script-src {GRAPHIQL_CDN} {hashes}; style-src 'self' 'unsafe-inline' {GRAPHIQL_CDN}; "
        f"img-src 'self' data: {GRAPHIQL_CDN}; font-src 'self' data: {GRAPHIQL_CDN}; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
    return response
