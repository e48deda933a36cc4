"""What a contact row says and what it does to a persona, as plain data:
validation, the columns of a new persona, the traits a known one takes, the
consent changes the rules allow. No database here: the row-by-row path
(resolvers/ingest.py) and the set-wise batch path (resolvers/ingest_batch.py)
apply the same rules, so both give the same personas.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from models import Organization, Persona
from models.base import new_id
from models.enums import AttributeSource, Channel, ConsentSource, OptInStatus, SourceKind
from resolvers import consent
from resolvers.errors import UserError, UserErrors
from resolvers.identity import ContactKeys, contact_keys

RAW_FILE = "RAW_FILE"
LOYALTY = "LOYALTY"
MAX_BATCH = 1000
# Column widths (models/) that input text must fit.
NAME_LENGTH = SOURCE_LENGTH = KEY_LENGTH = TAG_LENGTH = 200
# The persona columns a contact may fill or overwrite (trait_changes).
TRAIT_COLUMNS = (
    "first_name",
    "last_name",
    "birthday",
    "favorite_store_id",
    "browser",
    "ip_address",
    "phone",
    "email",
    "referred_by_id",
    "loyalty_member",
    "loyalty_signup_at",
    "updated_at",
)


class IngestOutcome(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    MERGED = "MERGED"
    REJECTED = "REJECTED"


@dataclass
class ConsentData:
    channel: str
    status: str
    source: str


@dataclass
class ContactData:
    source_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    birthday: dt.date | None = None
    favorite_store_id: uuid.UUID | None = None
    loyalty_member: bool | None = None
    loyalty_signup_at: dt.datetime | None = None
    attributes: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    consents: list[ConsentData] = field(default_factory=list)
    legacy_points: int | None = None
    # Set by the sign-up form and the pixel, never by integrations.
    browser: str | None = None
    ip_address: str | None = None
    referred_by_id: uuid.UUID | None = None
    # Problems the caller found while reading the row (e.g. a malformed id): the row is REJECTED with them.
    input_errors: list[UserError] = field(default_factory=list)


def source_kind(source: str) -> SourceKind:
    if source.upper() == RAW_FILE:
        return SourceKind.RAW_FILE
    if source.upper() == LOYALTY:
        return SourceKind.LOYALTY
    return SourceKind.INTEGRATION


def check_batch_size(count: int, path: list[str]) -> None:
    if count > MAX_BATCH:
        raise UserError("TOO_MANY", f"At most {MAX_BATCH} rows per call; {count} were sent.", path)


def check_source(source: str, path: list[str]) -> None:
    if not source.strip() or len(source) > SOURCE_LENGTH:
        raise UserError("INVALID", f"source must be 1 to {SOURCE_LENGTH} characters.", path)


def errors_of(exc: UserError | UserErrors) -> list[UserError]:
    return exc.errors if isinstance(exc, UserErrors) else [exc]


def validate_contact(org: Organization, contact: ContactData, path: list[str]) -> ContactKeys:
    """The contact's identity keys; every problem of the row at once (UserErrors), before any write."""
    keys, errors = contact_keys(contact.phone, contact.email, org.default_region, path)
    errors = [*contact.input_errors, *errors, *consent.validate_consents(contact.consents, path)]
    errors += _field_errors(contact, path)
    if errors:
        raise UserErrors(errors)
    if not keys.pairs():
        raise UserError("NO_CONTACT_INFO", "A contact needs a valid phone or email (placeholders do not count).", path)
    return keys


def _field_errors(contact: ContactData, path: list[str]) -> list[UserError]:
    errors = []

    def invalid(message: str, *where: str) -> None:
        errors.append(UserError("INVALID", message, [*path, *where]))

    for name, graph_name in (("first_name", "firstName"), ("last_name", "lastName"), ("source_id", "sourceId")):
        value = getattr(contact, name)
        if value is not None and len(value.strip()) > NAME_LENGTH:
            invalid(f"{graph_name} is longer than {NAME_LENGTH} characters.", graph_name)
    for i, (key, _) in enumerate(contact.attributes):
        if not key.strip() or len(key.strip()) > KEY_LENGTH:
            invalid(f"An attribute key must be 1 to {KEY_LENGTH} characters.", "attributes", str(i), "key")
    for i, tag in enumerate(contact.tags):
        if len(tag.strip()) > TAG_LENGTH:
            invalid(f"A tag is at most {TAG_LENGTH} characters.", "tags", str(i))
    if contact.legacy_points is not None:
        if contact.legacy_points < 0:
            invalid("legacyPoints may not be negative.", "legacyPoints")
        elif contact.legacy_points > 0 and not (contact.source_id or "").strip():
            invalid("legacyPoints need a sourceId: they are imported once per (source, sourceId).", "legacyPoints")
    if contact.loyalty_signup_at is not None and contact.loyalty_signup_at.tzinfo is None:
        invalid("loyaltySignupAt needs a time zone.", "loyaltySignupAt")
    if contact.birthday is not None and contact.birthday > dt.date.today():  # noqa: DTZ011 (a calendar date)
        invalid("birthday is in the future.", "birthday")
    return errors


def clean(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def new_persona_row(
    org_id: uuid.UUID, source: str, contact: ContactData, keys: ContactKeys, now: dt.datetime
) -> dict[str, Any]:
    """Every column of the persona a new contact makes (its number is claimed by the caller)."""
    kind = source_kind(source)
    member = bool(contact.loyalty_member)
    return {
        "org_id": org_id,
        "id": new_id(),
        "number": None,
        "first_name": clean(contact.first_name),
        "last_name": clean(contact.last_name),
        "email": keys.email,
        "phone": keys.phone,
        "birthday": contact.birthday,
        "source_kind": kind.value,
        "source_name": source if kind is SourceKind.INTEGRATION else None,
        "source_id": clean(contact.source_id),
        "favorite_store_id": contact.favorite_store_id,
        "browser": clean(contact.browser),
        "ip_address": clean(contact.ip_address),
        "wallet_pin": None,
        "loyalty_member": member,
        "loyalty_signup_at": (contact.loyalty_signup_at or now) if member else None,
        "referred_by_id": contact.referred_by_id,
        "sms_opt_out_at": None,
        "archived_at": None,
        "merged_into_id": None,
        "erased_at": None,
        "created_at": now,
        "updated_at": now,
    }


def trait_changes(
    current: Mapping[str, Any], contact: ContactData, keys: ContactKeys, now: dt.datetime
) -> dict[str, Any]:
    """The columns a contact fills or overwrites on a known persona; updated_at only when something changed."""
    wanted: dict[str, Any] = {
        "first_name": clean(contact.first_name),
        "last_name": clean(contact.last_name),
        "birthday": contact.birthday,
        "favorite_store_id": contact.favorite_store_id,
        "browser": clean(contact.browser),
        "ip_address": clean(contact.ip_address),
    }
    if current["phone"] is None:
        wanted["phone"] = keys.phone
    if current["email"] is None:
        wanted["email"] = keys.email
    if current["referred_by_id"] is None and contact.referred_by_id != current["id"]:
        wanted["referred_by_id"] = contact.referred_by_id
    changes = {name: value for name, value in wanted.items() if value is not None and current[name] != value}
    if contact.loyalty_member and not current["loyalty_member"]:
        changes["loyalty_member"] = True
        changes["loyalty_signup_at"] = contact.loyalty_signup_at or now
    if changes:
        changes["updated_at"] = now
    return changes


def persona_traits(persona: Persona) -> dict[str, Any]:
    return {name: getattr(persona, name) for name in ("id", *TRAIT_COLUMNS)}


def attribute_source(source: str) -> AttributeSource:
    return {
        SourceKind.RAW_FILE: AttributeSource.BULK_IMPORT,
        SourceKind.LOYALTY: AttributeSource.MANUAL,
        SourceKind.INTEGRATION: AttributeSource.POS_GROUP,
    }[source_kind(source)]


def wanted_attributes(contact: ContactData) -> dict[str, str]:
    return {key.strip(): value for key, value in contact.attributes}


def wanted_tags(contact: ContactData) -> list[str]:
    return sorted({tag.strip() for tag in contact.tags if tag.strip()})


def may_need_suppression(consents: Sequence[ConsentData]) -> bool:
    """Whether any of the consents is an opt-in the suppression list could stop."""
    return any(c.status == OptInStatus.OPTED_IN.value and c.source not in consent.CUSTOMER_SOURCES for c in consents)


def consent_changes(
    current: dict[str, tuple[str, str]], consents: Sequence[ConsentData], suppressed: bool
) -> list[ConsentData]:
    """The consents that change something under record_consent's rules (resolvers/consent.py).

    `current` (channel -> (status, source)) is updated in place. Unchanged channels are skipped;
    an opt-in from anyone but the customer never undoes a privacy opt-out and never reaches a
    suppressed contact; every change returned leaves an event."""
    changed = []
    for item in consents:
        held = current.get(item.channel)
        if held == (item.status, item.source):
            continue
        stoppable = item.status == OptInStatus.OPTED_IN.value and item.source not in consent.CUSTOMER_SOURCES
        if stoppable and (held == (OptInStatus.OPTED_OUT.value, ConsentSource.PRIVACY_REQUEST.value) or suppressed):
            continue
        current[item.channel] = (item.status, item.source)
        changed.append(item)
    return changed


def opts_out_of_text(item: ConsentData) -> bool:
    return item.channel == Channel.TEXT.value and item.status == OptInStatus.OPTED_OUT.value
