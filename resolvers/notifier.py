"""Where messages to customers leave the system: links, notices and one-time codes.

`Notifier` is the interface an SMS or email provider implements: `send` for a
message (sendLink, resolvers/engagement.py), `send_code` for a verification
code (the privacy page, routes/privacy.py), so a provider with its own
verification service can plug that in. The app holds one notifier in
`app.state.notifier` (create_app sets it; `notifier_for` makes one on first
use otherwise).

In development `LogNotifier` writes each message to the log and keeps the
last ones in memory (`sent`), where tests and a developer can read them. Logs
never carry PII, so the recipient is masked. Bodies and codes are shown only
with `reveal` on (create_app turns it off in production): a code in a
production log would let anyone who reads the log confirm a deletion.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("personagraph.notifier")

TEXT = "TEXT"
EMAIL = "EMAIL"


@dataclass(frozen=True)
class Notification:
    channel: str  # TEXT or EMAIL
    to: str  # E.164 phone or normalized email
    body: str
    subject: str | None = None


class Notifier(Protocol):
    async def send(self, notification: Notification) -> None:
        """Deliver one message."""

    async def send_code(self, channel: str, to: str, code: str) -> None:
        """Deliver a one-time verification code by TEXT (to a phone) or EMAIL."""


def mask(contact: str) -> str:
    """Enough of a phone or email to tell messages apart in a log, not to reach anyone."""
    if "@" in contact:
        local, _, domain = contact.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{contact[:2]}***{contact[-2:]}"


def code_message(channel: str, to: str, code: str) -> Notification:
    """The words a verification code travels in."""
    return Notification(
        channel=channel,
        to=to,
        body=f"Your verification code is {code}. It confirms your request to delete your data.",
        subject="Your verification code",
    )


class LogNotifier:
    """Development: every message goes to the log and to `sent`, nowhere else."""

    def __init__(self, keep: int = 500, *, reveal: bool = True) -> None:
        self.sent: deque[Notification] = deque(maxlen=keep)
        self.reveal = reveal

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)
        body = notification.body if self.reveal else f"({len(notification.body)} characters)"
        logger.info("development notifier: %s to %s: %s", notification.channel, mask(notification.to), body)

    async def send_code(self, channel: str, to: str, code: str) -> None:
        self.sent.append(code_message(channel, to, code))
        shown = code if self.reveal else "(hidden)"
        logger.info("development notifier: %s to %s: verification code %s", channel, mask(to), shown)


def notifier_for(app: Any) -> Notifier:
    """The app's notifier; a LogNotifier is made on first use when none was configured."""
    found: Notifier | None = getattr(app.state, "notifier", None)
    if found is None:
        found = LogNotifier()
        app.state.notifier = found
    return found
