"""Audiences: saved smart searches, with an accrual multiplier."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.tenancy import org_id_field


class Audience(SQLModel, table=True):
    __tablename__ = "audiences"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    query: str = Field(default="", sa_column=Column(Text, nullable=False))
    is_default: bool = False
    # Kept exact in thousandths: 1500 is a 1.5x multiplier.
    points_multiplier_milli: int = 1000
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
