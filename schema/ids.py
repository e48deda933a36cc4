"""Relay global IDs: base64 of "Type:uuid", opaque to clients."""

from __future__ import annotations

import base64
import binascii
import uuid

from resolvers.errors import BadUserInput


def to_global_id(type_name: str, id_: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{id_.hex}".encode()).decode().rstrip("=")


def parse_global_id(value: str) -> tuple[str, uuid.UUID]:
    try:
        padded = value + "=" * (-len(value) % 4)
        type_name, raw = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        return type_name, uuid.UUID(hex=raw)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadUserInput(f"Malformed ID {value[:60]!r}: pass an id this API returned.") from None


def from_global_id(value: str, type_name: str) -> uuid.UUID:
    """The uuid inside an id that must name a `type_name`."""
    found, id_ = parse_global_id(value)
    if found != type_name:
        raise BadUserInput(f"ID {value[:60]!r} is a {found} id, not a {type_name} id.")
    return id_
