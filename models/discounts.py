"""Discounts a persona can buy with points, and the redemptions of them."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.tenancy import org_id_field, tenant_fk


class Discount(SQLModel, table=True):
    __tablename__ = "discounts"

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    points_cost: int
    starts_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    ends_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Redemption(SQLModel, table=True):
    __tablename__ = "redemptions"
    __table_args__ = (
        tenant_fk("persona_id", "personas"),
        tenant_fk("discount_id", "discounts"),
        Index("ix_redemptions_persona_time", "org_id", "persona_id", "redeemed_at", "id"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    discount_id: uuid.UUID
    # Kept as redeemed, so renaming a discount does not rewrite history.
    discount_name: str = Field(max_length=200)
    points: int
    status: str = Field(max_length=16)
    actor: str | None = Field(default=None, max_length=200)
    redeemed_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    reversed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
