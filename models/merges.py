"""Merges of one persona into another, with everything they moved."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.tenancy import org_id_field, tenant_fk


class Merge(SQLModel, table=True):
    __tablename__ = "merges"
    __table_args__ = (
        tenant_fk("survivor_id", "personas"),
        tenant_fk("merged_id", "personas"),
        Index("ix_merges_survivor_time", "org_id", "survivor_id", "merged_at", "id"),
        Index("ix_merges_merged", "org_id", "merged_id"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(max_length=16)
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    merged_number: int
    reason: str | None = Field(default=None, max_length=500)
    actor: str | None = Field(default=None, max_length=200)
    # What moved, so undoMerge can put it back exactly: row ids per table,
    # identity keys, the loser's attribute values and consents as they were.
    moved: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    merged_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    undone_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
