"""The smart search conditions the dashboard offers: the label people see,
the text to paste into the search bar, and what it does. Every entry parses
(tests/test_search_conditions.py runs each one)."""

from __future__ import annotations

from dataclasses import dataclass

from models.enums import Channel


@dataclass(frozen=True)
class SmartCondition:
    """One entry of the dashboard's condition picker: what people see and what to paste."""

    label: str
    condition: str
    description: str


CHANNEL_NAMES: dict[Channel, str] = {
    Channel.LOYALTY: "the loyalty program",
    Channel.TEXT: "text messages",
    Channel.EMAIL: "email",
    Channel.MOBILE_PUSH: "mobile push",
    Channel.BROWSER_PUSH: "browser push",
    Channel.VOICE_DROP: "voice drops",
    Channel.WALLET_PASS: "the wallet pass",
    Channel.AGE_GATE: "the age gate",
}


def _catalog() -> tuple[SmartCondition, ...]:
    fixed = [
        SmartCondition("Phone (mobile) on file", "has:mobile_phone", "Personas with a mobile phone number."),
        SmartCondition("Email on file", "has:email", "Personas with an email address."),
        SmartCondition("Loyalty member", "is:loyalty_member", "Personas enrolled in the loyalty program."),
        SmartCondition(
            "Archived", "is:archived", "Archived personas (hidden from every other search unless asked for)."
        ),
    ]
    consents = [
        SmartCondition(
            f"{verb} {name}",
            f"{key}:{channel.value}",
            f"Personas whose current {channel.value} consent is {status}.",
        )
        for key, verb, status in (("opted_in", "Opted in to", "OPTED_IN"), ("opted_out", "Opted out of", "OPTED_OUT"))
        for channel, name in CHANNEL_NAMES.items()
    ]
    more = [
        SmartCondition(
            "Came from a loyalty sign-up", "source:loyalty", "Personas first seen on a loyalty sign-up form."
        ),
        SmartCondition("Came from a file import", "source:raw_file", "Personas first seen in an imported CSV file."),
        SmartCondition(
            "Came from an integration",
            "source:NAME",
            "Personas first seen through the named integration (e.g. the point of sale); replace NAME.",
        ),
        SmartCondition("Tagged", "tag:VIP", "Personas with this tag (case-insensitive); replace VIP with any tag."),
        SmartCondition(
            "Custom attribute",
            "attr:tier=gold",
            "Personas whose custom attribute has this value (case-insensitive); quote values with spaces.",
        ),
        SmartCondition(
            "Shops at a store",
            'store:"Main Street"',
            "Personas whose favorite store is this one, or who ordered there; replace the name.",
        ),
        SmartCondition("Points balance", "points>=500", "Compare the points balance with > >= < <= =."),
        SmartCondition("Total spent", "spent>100", "Compare all-time spend (post-tax, in dollars) with > >= < <= =."),
        SmartCondition("Number of orders", "orders>=3", "Compare the number of orders with > >= < <= =."),
        SmartCondition(
            "Seen recently", "last_seen<=30", "Days since the last order: last_seen<=30 ordered in the last 30 days."
        ),
        SmartCondition(
            "Not seen lately", "last_seen>90", "Days since the last order; personas who never ordered do not match."
        ),
        SmartCondition(
            "Signed up since",
            "signed_up>=2024-01-01",
            "Compare the loyalty sign-up date (YYYY-MM-DD, UTC) with > >= < <= =.",
        ),
    ]
    return (*fixed, *consents, *more)


SMART_CONDITIONS: tuple[SmartCondition, ...] = _catalog()
