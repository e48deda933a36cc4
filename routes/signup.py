"""The loyalty sign-up form, /signup/{org_slug}: a customer joins the loyalty program.

GET shows the form: name, phone, email, birthday, text and email consent, and
an optional signature drawn on a canvas (kept as a PNG data URL). POST creates
or updates the customer's persona through the identity rules of ingestion
(resolvers/ingest.py; source LOYALTY, so a new persona is sourcedFrom LOYALTY),
enrolls it in loyalty, records the consents ticked as the customer's own,
fills the browser and ipAddress traits and keeps a SignupSubmission (form
name, URL, time, IP, user agent, signature). Problems show next to their
field. The form carries a CSRF token (itsdangerous-signed, bound to a random
cookie); POSTs are rate-limited per client IP (in process memory: one limiter
per app instance); every answer carries strict security headers, with the
page's one script and one style allowed by a per-response nonce.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from database import Database
from models import Organization, SignupSubmission
from models.enums import Channel, ConsentSource, OptInStatus
from resolvers.engagement import referrer_for
from resolvers.identity import contact_keys
from resolvers.ingest import LOYALTY, ConsentData, ContactData, IngestOutcome, ingest_one
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
from settings import Settings

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

FORM_NAME = "Loyalty sign-up"
CSRF = Csrf(cookie="signup_csrf", path="/signup", salt="signup-page-csrf")
# A drawn signature as a PNG data URL is tens of kilobytes; the bound keeps a form post small.
MAX_SIGNATURE_CHARS = 400_000
MAX_BODY_BYTES = MAX_SIGNATURE_CHARS + 16_384
PNG_DATA_URL = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_REF_CHARS = 500
TEXT_FIELDS = {"first_name": 200, "last_name": 200, "phone": 40, "email": 320, "birthday": 10}
# Where an ingest error's input path points, by the form field it came from.
FIELD_OF_INPUT = {"firstName": "first_name", "lastName": "last_name", "phone": "phone", "email": "email"}
FIELD_OF_INPUT["birthday"] = "birthday"


@dataclass(frozen=True)
class SignupPageConfig:
    """Tunables; tests may set ``app.state.signup_page`` to another one."""

    ip_limit: int = 10
    window_seconds: float = 600.0
    csrf_max_age_seconds: int = 2 * 3600


def _config(request: Request) -> SignupPageConfig:
    return tunables(request, "signup_page", SignupPageConfig)


# Rendering ----------------------------------------------------------------------------------


def _policy(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _render(request: Request, org: Organization | None, status: int = 200, **context: Any) -> Response:
    nonce = secrets.token_urlsafe(16)
    slug = org.slug if org is not None else ""
    token = CSRF.issue(request, slug)
    response = templates.TemplateResponse(
        request,
        "signup.html",
        {
            "org_name": org.name if org is not None else "",
            "slug": slug,
            "nonce": nonce,
            "csrf_token": token.value,
            "values": {},
            "errors": {},
            "form_error": None,
            "done": None,
            "not_found": org is None,
            "ref": "",
            **context,
        },
        status_code=status,
        headers=security_headers(request, _policy(nonce)),
    )
    CSRF.set_cookie(request, response, token)
    return response


# The form -----------------------------------------------------------------------------------


@dataclass
class Filled:
    """What the customer typed, trimmed, and what is wrong with it by field."""

    values: dict[str, str]
    text_consent: bool
    email_consent: bool
    signature: str | None
    birthday: dt.date | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _read_form(fields: dict[str, str]) -> Filled:
    values = {name: fields.get(name, "").strip()[:limit] for name, limit in TEXT_FIELDS.items()}
    filled = Filled(
        values=values,
        text_consent=fields.get("text_consent") == "yes",
        email_consent=fields.get("email_consent") == "yes",
        signature=fields.get("signature", "").strip() or None,
    )
    # Shown again as they were if the form comes back with errors.
    values |= {name: "yes" for name in ("text_consent", "email_consent") if fields.get(name) == "yes"}
    errors = filled.errors
    if not values["first_name"]:
        errors["first_name"] = "Tell us your first name."
    if not values["phone"] and not values["email"]:
        errors["phone"] = "Give a phone number or an email, so we can find your points."
    if filled.text_consent and not values["phone"]:
        errors["phone"] = "Give a phone number to get our texts."
    if filled.email_consent and not values["email"]:
        errors["email"] = "Give an email to get our emails."
    if values["birthday"]:
        try:
            filled.birthday = dt.date.fromisoformat(values["birthday"])
        except ValueError:
            errors["birthday"] = "Give your birthday as a date."
        else:
            if not dt.date(1900, 1, 1) <= filled.birthday <= dt.datetime.now(dt.UTC).date():
                errors["birthday"] = "That birthday does not look right."
    if filled.signature is not None and not _is_png_data_url(filled.signature):
        errors["signature"] = "The signature did not come through. Clear it and sign again."
    elif filled.signature is not None:
        values["signature"] = filled.signature
    return filled


def _check_contact(filled: Filled, region: str) -> None:
    """Phone and email through the identity rules now, so every problem shows at once."""
    keys, problems = contact_keys(filled.values["phone"] or None, filled.values["email"] or None, region, [])
    for problem in problems:
        filled.errors.setdefault(_field_of(problem.field), _message(problem.code))
    if not problems and not keys.pairs() and "phone" not in filled.errors:
        filled.errors["phone"] = _message("NO_CONTACT_INFO")


def _is_png_data_url(value: str) -> bool:
    if len(value) > MAX_SIGNATURE_CHARS or not value.startswith(PNG_DATA_URL):
        return False
    try:
        head = base64.b64decode(value[len(PNG_DATA_URL) :], validate=True)[:8]
    except (binascii.Error, ValueError):
        return False
    return head == PNG_MAGIC


def _contact(filled: Filled, request: Request) -> ContactData:
    consents = [ConsentData(Channel.LOYALTY.value, OptInStatus.OPTED_IN.value, ConsentSource.CUSTOMER.value)]
    for ticked, channel in ((filled.text_consent, Channel.TEXT), (filled.email_consent, Channel.EMAIL)):
        if ticked:
            consents.append(ConsentData(channel.value, OptInStatus.OPTED_IN.value, ConsentSource.CUSTOMER.value))
    values = filled.values
    return ContactData(
        first_name=values["first_name"] or None,
        last_name=values["last_name"] or None,
        phone=values["phone"] or None,
        email=values["email"] or None,
        birthday=filled.birthday,
        loyalty_member=True,
        consents=consents,
        browser=request.headers.get("user-agent", "")[:500] or None,
        ip_address=client_ip(request),
    )


async def signup_form(request: Request) -> Response:
    org = await organization_of(request)
    if org is None:
        return _render(request, None, 404)
    # A friend's referral link (/r/{token}) lands here with ?ref=: carried through the form.
    return _render(request, org, ref=request.query_params.get("ref", "")[:MAX_REF_CHARS])


async def signup_submit(request: Request) -> Response:
    org = await organization_of(request)
    if org is None:
        return _render(request, None, 404)
    fields = await form_fields(request, max_fields=16, max_bytes=MAX_BODY_BYTES)
    if fields is None:
        return _render(request, org, 413, form_error=TOO_LARGE)
    config = _config(request)
    per_ip = app_limiter(request, "signup_limiter", config.ip_limit, config.window_seconds)
    if not per_ip.allow(client_ip(request) or "unknown"):
        return _render(request, org, 429, form_error="Too many sign-ups from here. Please try again later.")
    filled = _read_form(fields)
    _check_contact(filled, org.default_region)
    ref = fields.get("ref", "")[:MAX_REF_CHARS]
    if not CSRF.accepts(request, org.slug, fields.get(CSRF_FIELD, ""), config.csrf_max_age_seconds):
        return _render(request, org, 403, values=filled.values, ref=ref, form_error=EXPIRED)
    if filled.errors:
        return _render(request, org, 400, values=filled.values, ref=ref, errors=filled.errors)
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None, "the organization was just read"
        contact = _contact(filled, request)
        contact.referred_by_id = await referrer_for(session, settings, org.id, ref)
        result = await ingest_one(
            session,
            loaded,
            LOYALTY,
            contact,
            actor="loyalty sign-up form",
            path=[],
            number_block=settings.persona_number_block,
        )
        if result.outcome is IngestOutcome.REJECTED or result.persona is None:
            errors = {_field_of(e.field): _message(e.code) for e in result.errors}
            return _render(request, org, 400, values=filled.values, ref=ref, errors=errors)
        session.add(
            SignupSubmission(
                org_id=org.id,
                persona_id=result.persona.id,
                form_name=FORM_NAME,
                url=str(request.url.replace(query=""))[:2000],
                ip_address=client_ip(request),
                user_agent=request.headers.get("user-agent", "")[:500] or None,
                signature=filled.signature,
            )
        )
        first_name = result.persona.first_name
    return _render(request, org, done={"first_name": first_name})


def _field_of(path: list[str] | None) -> str:
    return FIELD_OF_INPUT.get(path[0], "form") if path else "phone"


def _message(code: str) -> str:
    return {
        "INVALID_PHONE": "That phone number does not look right.",
        "INVALID_EMAIL": "That email does not look right.",
        "NO_CONTACT_INFO": "Give a phone number or an email, so we can find your points.",
    }.get(code, "That does not look right.")


routes = [
    Route("/signup/{org_slug}", signup_form, methods=["GET"]),
    Route("/signup/{org_slug}", signup_submit, methods=["POST"]),
]
