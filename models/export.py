"""What the CSV export reads besides the personas and their rollups."""

from __future__ import annotations

import uuid

from sqlmodel import Field, SQLModel

from models.enums import Channel
from models.tenancy import implied_org_id_field

# Between a persona's tags in their cell (migration 0007 writes the same).
TAG_SEPARATOR = "; "


def consent_column(channel: Channel) -> str:
    """A channel's status column, here and in the CSV file."""
    return f"consent_{channel.value.lower()}"


class PersonaExportCells(SQLModel, table=True):
    """A persona's tags and its status on each channel, as the CSV export writes them: tags in
    code point order joined by '; ', and a channel's status where the persona has a consent
    row for it (NULL otherwise, written as UNKNOWN).

    Read per exported persona, those were two aggregates a row (more than half of an export's
    time in PostgreSQL); here they are one row joined like the rollups. Kept by triggers on
    persona_tags and consents (migration 0007) in the transaction of every write, whatever
    path wrote it; never written by the application. A persona with neither tags nor
    consents may have no row."""

    __tablename__ = "persona_export_cells"

    org_id: uuid.UUID = implied_org_id_field()
    persona_id: uuid.UUID = Field(primary_key=True)
    tags: str | None = None
    consent_loyalty: str | None = Field(default=None, max_length=16)
    consent_text: str | None = Field(default=None, max_length=16)
    consent_email: str | None = Field(default=None, max_length=16)
    consent_mobile_push: str | None = Field(default=None, max_length=16)
    consent_browser_push: str | None = Field(default=None, max_length=16)
    consent_voice_drop: str | None = Field(default=None, max_length=16)
    consent_wallet_pass: str | None = Field(default=None, max_length=16)
    consent_age_gate: str | None = Field(default=None, max_length=16)
