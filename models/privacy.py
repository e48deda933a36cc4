"""Privacy requests and the suppression list they leave behind."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.tenancy import org_id_field


class PrivacyRequest(SQLModel, table=True):
    __tablename__ = "privacy_requests"
    __table_args__ = (Index("ix_privacy_requests_time", "org_id", "requested_at", "id"),)

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    action: str = Field(max_length=16)
    status: str = Field(max_length=32)
    # Keyed hashes of the normalized contacts, never the values.
    contact_hashes: str = ""
    code_hash: str | None = Field(default=None, max_length=64)
    code_expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    attempts: int = 0
    personas_affected: int = 0
    requested_by: str | None = Field(default=None, max_length=200)
    requested_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    completed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class Suppression(SQLModel, table=True):
    """A contact that opted out by privacy request: imports may not opt it back in."""

    __tablename__ = "suppressions"

    org_id: uuid.UUID = org_id_field()
    contact_hash: str = Field(primary_key=True, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
