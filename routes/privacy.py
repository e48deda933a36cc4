"""The public privacy page, /privacy/{org_slug}: customers opt out or delete their data.

Opt-out applies at once. Deletion sends a one-time code through the app's
notifier and runs when the code comes back on /privacy/{org_slug}/confirm.

Nothing the page says or how long it takes depends on whether the contact is
known: unknown contacts get a request row and a code like anyone else, every
answer for the same input is the same document (only the CSRF token differs),
and every POST answers no sooner than a fixed floor. Forms carry a CSRF token
(itsdangerous-signed, bound to a random cookie); POSTs are rate-limited per
client IP and per contact (in process memory: one limiter per app instance);
every answer carries strict security headers. Nothing here logs a contact.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from database import Database
from models import AuditEntry, Organization, PrivacyRequest
from models.enums import IdentityKind, PrivacyAction
from resolvers import privacy
from resolvers.consent import contact_hash
from resolvers.errors import UserError, UserErrors
from resolvers.identity import ContactKeys
from resolvers.notifier import EMAIL, TEXT, notifier_for
from routes.forms import (
    CSRF_FIELD,
    EXPIRED,
    TOO_LARGE,
    Csrf,
    app_limiter,
    client_ip,
    form_fields,
    organization_of,
    security_headers,
    tunables,
)
from schema.ids import to_global_id

logger = logging.getLogger("personagraph.privacy_page")
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

CSRF = Csrf(cookie="privacy_csrf", path="/privacy", salt="privacy-page-csrf")
MAX_BODY_BYTES = 8192
CSS = (
    "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f4;color:#1d2521}"
    "main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}"
    "label{display:block;margin-top:.8rem}input[type=tel],input[type=email],input[inputmode=numeric]"
    "{width:100%;padding:.5rem;box-sizing:border-box}fieldset{margin-top:1rem}"
    "fieldset label{margin-top:.3rem}button{margin-top:1.2rem;padding:.6rem 1.2rem}"
    ".error{color:#9b1c1c}.done{font-weight:600}.note{color:#55605a;font-size:.9rem}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DONE_OPT_OUT = "Done. If we hold this phone or email, it will get no more messages from us."
DONE_DELETED = "Done. If we held data for this phone or email, it has been deleted."
REFUSED_CODE = "That code is not right, has expired or was used up. Check it, or start again."
TOO_MANY = "Too many requests. Please try again later."


@dataclass(frozen=True)
class PrivacyPageConfig:
    """Tunables; tests may set ``app.state.privacy_page`` to another one."""

    response_floor_seconds: float = 1.0
    ip_limit: int = 30
    contact_limit: int = 6
    window_seconds: float = 3600.0
    csrf_max_age_seconds: int = 2 * 3600


def _config(request: Request) -> PrivacyPageConfig:
    return tunables(request, "privacy_page", PrivacyPageConfig)


# Rendering --------------------------------------------------------------------------


def _render(request: Request, org: Organization, template: str, status: int = 200, **context: Any) -> Response:
    token = CSRF.issue(request, org.slug)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "org_name": org.name,
            "slug": org.slug,
            "css": CSS,
            "csrf_token": token.value,
            "code_digits": privacy.CODE_DIGITS,
            "code_minutes": int(privacy.CODE_TTL.total_seconds() // 60),
            "error": None,
            **context,
        },
        status_code=status,
    )
    CSRF.set_cookie(request, response, token)
    return _secured(request, response)


def _secured(request: Request, response: Response) -> Response:
    response.headers.update(security_headers(request, POLICY))
    return response


def _not_found(request: Request) -> Response:
    return _secured(request, PlainTextResponse("Not Found", status_code=404))


def _audit(
    org_id: uuid.UUID,
    operation: str,
    request: PrivacyRequest | None,
    persona_ids: list[uuid.UUID],
    outcome: str,
    detail: str = "",
) -> AuditEntry:
    """What the public page did, with ids and outcome; never the contact."""
    targets = [to_global_id("PrivacyRequest", request.id)] if request is not None else []
    targets += [to_global_id("Persona", pid) for pid in persona_ids]
    return AuditEntry(
        org_id=org_id,
        actor=privacy.PUBLIC_ACTOR,
        role="PUBLIC",
        operation=operation,
        target_ids=" ".join(targets),
        outcome=outcome,
        detail=detail,
    )


# Handlers ---------------------------------------------------------------------------


async def privacy_form(request: Request) -> Response:
    org = await organization_of(request)
    if org is None:
        return _not_found(request)
    return _render(request, org, "privacy.html")


async def confirm_form(request: Request) -> Response:
    org = await organization_of(request)
    if org is None:
        return _not_found(request)
    return _render(request, org, "privacy_confirm.html")


async def privacy_submit(request: Request) -> Response:
    return await _with_floor(request, _submit)


async def confirm_submit(request: Request) -> Response:
    return await _with_floor(request, _confirm)


async def _with_floor(request: Request, handler: Any) -> Response:
    """Answer no sooner than the floor, so the time taken says nothing about the contact."""
    started = time.monotonic()
    response: Response = await handler(request)
    floor = _config(request).response_floor_seconds
    elapsed = time.monotonic() - started
    if elapsed > floor > 0:
        logger.warning("privacy page answered in %.0f ms, above its %.0f ms floor", elapsed * 1000, floor * 1000)
    await asyncio.sleep(max(floor - elapsed, 0))
    return response


@dataclass
class Submission:
    org: Organization
    keys: ContactKeys
    fields: dict[str, str]


async def _accept(request: Request, template: str) -> Submission | Response:
    """The checks every POST passes first: organization, size, CSRF, limits, a valid contact."""
    org = await organization_of(request)
    if org is None:
        return _not_found(request)
    fields = await form_fields(request, max_fields=8, max_bytes=MAX_BODY_BYTES)
    if fields is None:
        return _render(request, org, template, 413, error=TOO_LARGE)
    config = _config(request)
    if not CSRF.accepts(request, org.slug, fields.get(CSRF_FIELD, ""), config.csrf_max_age_seconds):
        return _render(request, org, template, 403, error=EXPIRED)
    per_ip = app_limiter(request, "privacy_ip_limiter", config.ip_limit, config.window_seconds)
    if not per_ip.allow(client_ip(request) or "unknown"):
        return _render(request, org, template, 429, error=TOO_MANY)
    try:
        keys = privacy.normalize_contact(
            fields.get("phone", "")[:40], fields.get("email", "")[:320], org.default_region, []
        )
    except (UserError, UserErrors) as exc:
        return _render(request, org, template, 400, error=_contact_error(exc))
    contact_key = f"{org.id.hex}:{' '.join(contact_hash(v) for _, v in keys.pairs())}"
    per_contact = app_limiter(request, "privacy_contact_limiter", config.contact_limit, config.window_seconds)
    if not per_contact.allow(contact_key):
        return _render(request, org, template, 429, error=TOO_MANY)
    return Submission(org, keys, fields)


def _contact_error(exc: UserError | UserErrors) -> str:
    codes = {e.code for e in exc.errors} if isinstance(exc, UserErrors) else {exc.code}
    if "INVALID_PHONE" in codes:
        return "That phone number does not look right."
    if "INVALID_EMAIL" in codes:
        return "That email does not look right."
    return "Give a phone number or an email."


async def _submit(request: Request) -> Response:
    accepted = await _accept(request, "privacy.html")
    if isinstance(accepted, Response):
        return accepted
    org, keys, action = accepted.org, accepted.keys, accepted.fields.get("action")
    db: Database = request.app.state.db
    if action == PrivacyAction.OPT_OUT.value:
        async with db.session() as session, session.begin():
            outcome = await privacy.public_opt_out(session, org, keys)
            session.add(_audit(org.id, "privacyPage.optOut", outcome.request, outcome.persona_ids, "OK"))
        return _render(request, org, "privacy_done.html", message=DONE_OPT_OUT)
    if action != PrivacyAction.DELETE_DATA.value:
        return _render(request, org, "privacy.html", 400, error="Choose what we should do.")
    async with db.session() as session, session.begin():
        pending, code = await privacy.start_deletion(session, org, keys)
        session.add(_audit(org.id, "privacyPage.requestDeletion", pending, [], "PENDING"))
    await _send_code(request, keys, code)
    return _render(request, org, "privacy_confirm.html")


async def _send_code(request: Request, keys: ContactKeys, code: str) -> None:
    notifier = notifier_for(request.app)
    for kind, value in keys.pairs():
        channel = TEXT if kind == IdentityKind.PHONE.value else EMAIL
        try:
            await notifier.send_code(channel, value, code)
        except Exception as exc:  # a provider failure must not change what the page says
            logger.error("sending a privacy code by %s failed: %s", channel, type(exc).__name__)


async def _confirm(request: Request) -> Response:
    accepted = await _accept(request, "privacy_confirm.html")
    if isinstance(accepted, Response):
        return accepted
    org, keys = accepted.org, accepted.keys
    code = accepted.fields.get("code", "")[:16]
    db: Database = request.app.state.db
    async with db.session() as session, session.begin():
        confirmation = await privacy.confirm_deletion(session, org, keys, code)
        erased = confirmation.result is privacy.ConfirmResult.ERASED
        session.add(
            _audit(
                org.id,
                "privacyPage.confirmDeletion",
                confirmation.request,
                confirmation.persona_ids,
                "OK" if erased else "REFUSED",
                confirmation.detail,
            )
        )
    if erased:
        return _render(request, org, "privacy_done.html", message=DONE_DELETED)
    return _render(request, org, "privacy_confirm.html", 400, error=REFUSED_CODE)


routes = [
    Route("/privacy/{org_slug}", privacy_form, methods=["GET"]),
    Route("/privacy/{org_slug}", privacy_submit, methods=["POST"]),
    Route("/privacy/{org_slug}/confirm", confirm_form, methods=["GET"]),
    Route("/privacy/{org_slug}/confirm", confirm_submit, methods=["POST"]),
]
