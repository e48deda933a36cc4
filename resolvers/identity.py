"""Identity rules: phones to E.164, emails trimmed and lower-cased, and the
placeholder values that never count as a way to reach someone."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneMetadata

from models.enums import IdentityKind
from resolvers.errors import UserError

# Values POS clerks type when the customer gives none. Extend with
# PERSONAGRAPH_PLACEHOLDERS (comma-separated emails, email local parts ending
# in "@", or phone digits).
DEFAULT_PLACEHOLDER_EMAILS = frozenset({"none@none.com", "no@email.com", "test@test.com", "na@na.com", "n/a@n/a.com"})
DEFAULT_PLACEHOLDER_LOCAL_PARTS = frozenset({"noemail", "none", "nomail", "donotemail", "no-email", "noreply"})
DEFAULT_PLACEHOLDER_PHONES = frozenset({"1234567890", "0123456789", "5555555555"})
_ONE_DIGIT = re.compile(r"^(\d)\1+$")


def _extra_placeholders() -> frozenset[str]:
    return _placeholders_in(os.environ.get("PERSONAGRAPH_PLACEHOLDERS", ""))


@lru_cache(maxsize=8)
def _placeholders_in(setting: str) -> frozenset[str]:
    """Read once per value of the setting, not twice a contact (a batch of 500 split it 1,000 times)."""
    return frozenset(v.strip().lower() for v in setting.split(",") if v.strip())


def is_placeholder_email(email: str) -> bool:
    extra = _extra_placeholders()
    local = email.split("@", 1)[0]
    return (
        email in DEFAULT_PLACEHOLDER_EMAILS
        or email in extra
        or local in DEFAULT_PLACEHOLDER_LOCAL_PARTS
        or f"{local}@" in extra
    )


def is_placeholder_phone(digits: str) -> bool:
    national = digits[-10:]
    return bool(_ONE_DIGIT.match(national)) or national in DEFAULT_PLACEHOLDER_PHONES or digits in _extra_placeholders()


def normalize_phone(raw: str, region: str = "US", *, field: list[str] | None = None) -> str | None:
    """E.164, or None for a placeholder; INVALID_PHONE when it is not a real number."""
    value = raw.strip()
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if digits and is_placeholder_phone(digits):
        return None
    e164, problem = _parsed_phone(value, region)
    if problem is not None:
        raise UserError("INVALID_PHONE", problem, field)
    return e164


def normalize_email(raw: str, *, field: list[str] | None = None) -> str | None:
    """Trimmed and lower-cased, or None for a placeholder; INVALID_EMAIL when malformed."""
    value = raw.strip().lower()
    if not value:
        return None
    normalized, problem = _validated_email(value)
    if problem is not None:
        raise UserError("INVALID_EMAIL", f"This email is not valid: {problem}", field)
    return None if is_placeholder_email(normalized) else normalized


# Parsing and validating cost 0.2-0.3 ms a value, the most of what a batch row costs in Python;
# the same customers come back (their orders, replays, known contacts), and the answers depend on
# nothing but the value (no DNS). Placeholders are checked outside the caches: they follow the
# environment.
PARSE_CACHE_SIZE = 32_768
# A North American number as points of sale send it: +1 and ten digits, or (US) ten digits with
# the usual separators. phonenumbers.parse reads these to country code 1 and the ten digits (a
# national number never starts with 0 or 1, so there is no national prefix to strip): the number
# is built directly and only its validity asked of the library, for half the cost.
NANP_E164 = re.compile(r"\+1([2-9]\d{9})")
NANP_US = re.compile(r"\(?([2-9]\d{2})\)?[ .-]?(\d{3})[ .-]?(\d{4})")
# An address whose local part is email_validator's plain ASCII dot-atom and whose domain is ASCII:
# the library accepts the local part as it is, so only the domain (cached per domain: customers
# share a few) and the lengths are left to check.
PLAIN_LOCAL_PART = re.compile(r"[a-z0-9_!#$%&'*+/=?^`{|}~-]+(?:\.[a-z0-9_!#$%&'*+/=?^`{|}~-]+)*")
EMAIL_MAX_LENGTH = 254  # email_validator's limit, in UTF-8 bytes, on every form of the address


# is_valid_number asks the North American regions in the library's order whether the number is one
# of theirs (each region's number-type patterns), then asks the region it found again. The US comes
# first and names no leading digits: a number valid for the US is one is_valid_number calls valid, so
# asking the US alone first answers most numbers in one pass over the patterns instead of two.
_US = PhoneMetadata.metadata_for_region("US")
US_FIRST = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(1, ())[:1] == ("US",)
US_FIRST = US_FIRST and _US is not None and _US.leading_digits is None


def valid_nanp(number: phonenumbers.PhoneNumber) -> bool:
    """phonenumbers.is_valid_number for a number of country code 1."""
    return (US_FIRST and phonenumbers.is_valid_number_for_region(number, "US")) or phonenumbers.is_valid_number(number)


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parsed_phone(value: str, region: str) -> tuple[str, str | None]:
    """(E.164, None), or ("", why it is not a valid number)."""
    nanp = NANP_E164.fullmatch(value) or (NANP_US.fullmatch(value) if region == "US" else None)
    if nanp is not None:
        national = "".join(nanp.groups())
        if valid_nanp(phonenumbers.PhoneNumber(country_code=1, national_number=int(national))):
            return f"+1{national}", None
        return "", "This phone number is not valid."
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return "", "This is not a phone number."
    if not phonenumbers.is_valid_number(parsed):
        return "", "This phone number is not valid."
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _validated_email(value: str) -> tuple[str, str | None]:
    """(normalized, None), or ("", why it is not valid); `value` is stripped and lower-cased."""
    local, _, domain = value.partition("@")
    if domain.isascii() and "@" not in domain and PLAIN_LOCAL_PART.fullmatch(local):
        found = _validated_domain(domain)
        if found is not None:
            normalized = f"{local}@{found[0]}"
            if max(len(value), len(normalized.encode()), len(local) + 1 + len(found[1])) <= EMAIL_MAX_LENGTH:
                return normalized.lower(), None
    try:
        return validate_email(value, check_deliverability=False).normalized.lower(), None
    except EmailNotValidError as exc:
        return "", str(exc)


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _validated_domain(domain: str) -> tuple[str, str] | None:
    """The domain as email_validator normalizes it and in IDNA ASCII, or None: ask about the whole address."""
    try:
        found = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return found.domain, found.ascii_domain


@dataclass(frozen=True)
class ContactKeys:
    """A contact's usable identity keys, after normalization."""

    phone: str | None
    email: str | None

    def pairs(self) -> list[tuple[str, str]]:
        found = []
        if self.phone:
            found.append((IdentityKind.PHONE.value, self.phone))
        if self.email:
            found.append((IdentityKind.EMAIL.value, self.email))
        return found


def contact_keys(
    phone: str | None, email: str | None, region: str, path: list[str]
) -> tuple[ContactKeys, list[UserError]]:
    """Normalize both; collect every error rather than stopping at the first."""
    errors: list[UserError] = []
    normalized_phone = normalized_email = None
    if phone is not None:
        try:
            normalized_phone = normalize_phone(phone, region, field=[*path, "phone"])
        except UserError as e:
            errors.append(e)
    if email is not None:
        try:
            normalized_email = normalize_email(email, field=[*path, "email"])
        except UserError as e:
            errors.append(e)
    return ContactKeys(normalized_phone, normalized_email), errors
