"""Phones and emails are read exactly as phonenumbers and email_validator read
them: the shortcuts resolvers/identity.py takes for the common forms (North
American numbers, plain ASCII addresses) give the same keys and the same
refusals as the libraries."""

from __future__ import annotations

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from resolvers import identity

DIGITS = st.text(alphabet="0123456789", min_size=10, max_size=10)
PHONE_FORMS = ("+1{}{}{}", "{}{}{}", "({}) {}-{}", "{}.{}.{}", "{}-{}-{}", "{} {} {}", "({}){}-{}", "+1 {} {} {}")
LOCAL = st.text(alphabet="abz09._-+'!#@", min_size=1, max_size=14)
DOMAINS = (
    "example.com",
    "mail.example.co.uk",
    "x",
    "localhost",
    "b.test",
    "b.invalid",
    "b..com",
    "-b.com",
    "b.123",
    "xn--bcher-kva.example",
    "sub.example.com.",
    "[1.2.3.4]",
    "a" * 63 + ".com",
    ("b" * 63 + ".") * 3 + "b" * 61,
)


def library_phone(value: str, region: str) -> tuple[str, str | None]:
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return "", "This is not a phone number."
    if not phonenumbers.is_valid_number(parsed):
        return "", "This phone number is not valid."
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None


def library_email(value: str) -> tuple[str, str | None]:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower(), None
    except EmailNotValidError as exc:
        return "", str(exc)


@settings(max_examples=400, deadline=None)
@given(digits=DIGITS, form=st.sampled_from(PHONE_FORMS), region=st.sampled_from(["US", "CA", "GB", "DE"]))
def test_a_phone_reads_as_phonenumbers_reads_it(digits: str, form: str, region: str) -> None:
    # Given a ten-digit number written the ways points of sale write it
    value = form.format(digits[:3], digits[3:6], digits[6:])
    # Then the E.164 key (or the refusal) is phonenumbers' own
    assert identity._parsed_phone.__wrapped__(value, region) == library_phone(value, region)


NANP_REGIONS = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]
NUMBER_TYPES = [t for t in vars(phonenumbers.PhoneNumberType).values() if isinstance(t, int)]


@pytest.mark.parametrize("region", NANP_REGIONS)
def test_every_north_american_regions_numbers_are_valid_as_phonenumbers_says(region: str) -> None:
    # Given each North American region's example number of each type, and the same numbers one digit off
    examples = [phonenumbers.example_number_for_type(region, t) for t in NUMBER_TYPES]
    numbers = {n.national_number for n in examples if n is not None and n.national_number is not None}
    numbers |= {n + 1 for n in numbers} | {n - 1 for n in numbers}
    assert numbers, region
    for national in sorted(numbers):
        number = phonenumbers.PhoneNumber(country_code=1, national_number=national)
        # Then the US asked first gives phonenumbers' own answer
        assert identity.valid_nanp(number) == phonenumbers.is_valid_number(number), national


@settings(max_examples=400, deadline=None)
@given(local=LOCAL, domain=st.sampled_from(DOMAINS))
def test_an_email_reads_as_email_validator_reads_it(local: str, domain: str) -> None:
    # Given an address, plain or not, on a domain valid or not
    value = f"{local}@{domain}".lower()
    # Then the normalized key (or the refusal and its reason) is email_validator's own
    assert identity._validated_email.__wrapped__(value) == library_email(value)


@pytest.mark.parametrize(
    "value",
    [
        "a" * 64 + "@" + ("b" * 63 + ".") * 2 + "b" * 58,  # 254 characters: the longest address
        "a" * 65 + "@" + ("b" * 63 + ".") * 2 + "b" * 58,  # 255: too long
        "customer1@xn--bcher-kva.example",  # an IDNA domain reads back in Unicode
        "first.last@example.com",
    ],
)
def test_the_length_limit_and_idna_domains_as_email_validator_has_them(value: str) -> None:
    assert identity._validated_email.__wrapped__(value) == library_email(value)
