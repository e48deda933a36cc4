"""The persona and what hangs off it directly: identity keys, attributes,
tags, consents and sign-up submissions."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.tenancy import implied_org_id_field, org_id_field, tenant_fk


class Persona(SQLModel, table=True):
    __tablename__ = "personas"
    __table_args__ = (
        UniqueConstraint("org_id", "number"),
        tenant_fk("favorite_store_id", "stores"),
        tenant_fk("merged_into_id", "personas"),
        tenant_fk("referred_by_id", "personas"),
        Index("ix_personas_list", "org_id", "created_at", "id"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    number: int
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)
    birthday: dt.date | None = None
    source_kind: str = Field(max_length=16)
    source_name: str | None = Field(default=None, max_length=200)
    source_id: str | None = Field(default=None, max_length=200)
    favorite_store_id: uuid.UUID | None = None
    browser: str | None = Field(default=None, max_length=500)
    ip_address: str | None = Field(default=None, max_length=64)
    wallet_pin: str | None = Field(default=None, max_length=8)
    loyalty_member: bool = False
    loyalty_signup_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    referred_by_id: uuid.UUID | None = None
    sms_opt_out_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    archived_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    merged_into_id: uuid.UUID | None = None
    erased_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class IdentityKey(SQLModel, table=True):
    """(org, kind, normalized value) is unique: one persona per phone and per email."""

    __tablename__ = "identity_keys"
    __table_args__ = (
        tenant_fk("persona_id", "personas"),
        Index("ix_identity_keys_persona", "org_id", "persona_id"),
    )

    org_id: uuid.UUID = implied_org_id_field()
    kind: str = Field(primary_key=True, max_length=8)
    value: str = Field(primary_key=True, max_length=320)
    persona_id: uuid.UUID
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class CustomAttribute(SQLModel, table=True):
    __tablename__ = "custom_attributes"
    __table_args__ = (tenant_fk("persona_id", "personas"),)

    org_id: uuid.UUID = implied_org_id_field()
    persona_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    value: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=16)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PersonaTag(SQLModel, table=True):
    __tablename__ = "persona_tags"
    __table_args__ = (tenant_fk("persona_id", "personas"),)

    org_id: uuid.UUID = implied_org_id_field()
    persona_id: uuid.UUID = Field(primary_key=True)
    tag: str = Field(primary_key=True, max_length=200)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Consent(SQLModel, table=True):
    """The current status per channel; ConsentEvent keeps every change."""

    __tablename__ = "consents"
    __table_args__ = (tenant_fk("persona_id", "personas"),)

    org_id: uuid.UUID = implied_org_id_field()
    persona_id: uuid.UUID = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=16)
    status: str = Field(max_length=16)
    source: str = Field(max_length=16)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ConsentEvent(SQLModel, table=True):
    __tablename__ = "consent_events"
    __table_args__ = (
        tenant_fk("persona_id", "personas"),
        Index("ix_consent_events_persona", "org_id", "persona_id", "occurred_at"),
    )

    org_id: uuid.UUID = implied_org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    channel: str = Field(max_length=16)
    status: str = Field(max_length=16)
    source: str = Field(max_length=16)
    occurred_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class SignupSubmission(SQLModel, table=True):
    __tablename__ = "signup_submissions"
    __table_args__ = (
        tenant_fk("persona_id", "personas"),
        Index("ix_signup_submissions_persona", "org_id", "persona_id", "submitted_at"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    form_name: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    # A data: URL of the PNG the signature pad produced.
    signature: str | None = Field(default=None, sa_column=Column(Text))
    submitted_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
