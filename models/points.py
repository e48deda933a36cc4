"""The points ledger and the per-persona rollups kept beside it.

The ledger is append-only; the balance is its sum. PersonaRollup caches the
balance, per-kind totals and the shopping figures, and PurchaseCount the
per-brand/category/product order counts, all updated in the transaction of
the write that changes them, so reading a card never scans history.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.tenancy import implied_org_id_field, tenant_fk


class PointsEntry(SQLModel, table=True):
    __tablename__ = "points_entries"
    __table_args__ = (
        tenant_fk("persona_id", "personas"),
        tenant_fk("order_id", "orders"),
        tenant_fk("redemption_id", "redemptions"),
        Index("ix_points_entries_persona_time", "org_id", "persona_id", "created_at", "id"),
        Index("ix_points_entries_order", "org_id", "order_id"),
    )

    org_id: uuid.UUID = implied_org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    kind: str = Field(max_length=32)
    delta: int
    balance_after: int
    note: str | None = Field(default=None, max_length=1000)
    order_id: uuid.UUID | None = None
    redemption_id: uuid.UUID | None = None
    actor: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class LegacyPointImport(SQLModel, table=True):
    """Legacy points are imported once per (source, sourceId)."""

    __tablename__ = "legacy_point_imports"
    __table_args__ = (tenant_fk("entry_id", "points_entries"),)

    org_id: uuid.UUID = implied_org_id_field()
    source: str = Field(primary_key=True, max_length=200)
    source_id: str = Field(primary_key=True, max_length=200)
    entry_id: uuid.UUID


class PersonaRollup(SQLModel, table=True):
    __tablename__ = "persona_rollups"
    __table_args__ = (
        tenant_fk("persona_id", "personas"),
        Index("ix_persona_rollups_balance", "org_id", "points_balance"),
        Index("ix_persona_rollups_spend", "org_id", "spend_total_cents"),
        Index("ix_persona_rollups_last_order", "org_id", "last_order_at"),
    )

    org_id: uuid.UUID = implied_org_id_field()
    persona_id: uuid.UUID = Field(primary_key=True)
    points_balance: int = 0
    # Shopping figures.
    orders_count: int = 0
    items_count: int = 0
    spend_total_cents: int = 0
    spend_subtotal_cents: int = 0
    spend_member_subtotal_cents: int = 0
    first_order_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_order_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # Ledger totals per kind (REDEMPTION is net of reversals).
    points_order: int = 0
    points_visit: int = 0
    points_referral_sale: int = 0
    points_redemption: int = 0
    points_staff_adjustment: int = 0
    points_audience_boost: int = 0
    points_campaign_gift: int = 0
    points_flow_gift: int = 0
    points_collectible: int = 0
    points_legacy_import: int = 0
    points_expiration: int = 0


class PurchaseCount(SQLModel, table=True):
    """In how many of a persona's orders a brand, category or product appears."""

    __tablename__ = "purchase_counts"
    __table_args__ = (tenant_fk("persona_id", "personas"),)

    org_id: uuid.UUID = implied_org_id_field()
    persona_id: uuid.UUID = Field(primary_key=True)
    dimension: str = Field(primary_key=True, max_length=16)
    name: str = Field(primary_key=True, max_length=300)
    order_count: int = 0
    last_purchased_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
