"""Organizations (the tenants), their stores and their API keys."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.tenancy import org_id_field


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    default_region: str = Field(default="US", max_length=2)
    # Loyalty settings. pointsPerDollar is a rate, kept exact in thousandths.
    points_per_dollar_milli: int = 1000
    points_per_order: int = 0
    show_pin_in_wallets: bool = False
    referral_points_enabled: bool = False
    referral_points: int = 0
    points_expire_after_days: int | None = None
    # The next unallocated persona number; processes claim blocks of these.
    next_persona_number: int = 1
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Store(SQLModel, table=True):
    __tablename__ = "stores"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ApiKey(SQLModel, table=True):
    """A key carries one role in one organization; only its hash is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (
        # Authentication finds a key by its prefix before it knows the org.
        Index("ix_api_keys_prefix", "prefix"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=32)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_used_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class AuditEntry(SQLModel, table=True):
    """One row per mutation: who, what, on which ids, with what outcome; never PII."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_time", "org_id", "occurred_at"),)

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    api_key_id: uuid.UUID | None = None
    actor: str = Field(max_length=200)
    role: str = Field(max_length=32)
    operation: str = Field(max_length=64)
    target_ids: str = ""  # space-separated global ids
    outcome: str = Field(max_length=32)
    detail: str = ""
    occurred_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    """The first result of a mutation sent with an idempotencyKey."""

    __tablename__ = "idempotency_records"

    org_id: uuid.UUID = org_id_field()
    key: str = Field(primary_key=True, max_length=200)
    operation: str = Field(max_length=64)
    request_hash: str = Field(max_length=64)
    result: str  # JSON of the ids the first call returned
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
