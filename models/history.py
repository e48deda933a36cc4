"""What a persona did: orders with their lines, messages, surveys, campaign
actions and pixel events. Each is keyed (org, persona, time, id) for the
newest-first keyset pages of the History tab."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.tenancy import implied_org_id_field, org_id_field, tenant_fk


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("org_id", "source", "external_id"),
        tenant_fk("persona_id", "personas"),
        tenant_fk("store_id", "stores"),
        Index("ix_orders_persona_time", "org_id", "persona_id", "placed_at", "id"),
    )

    org_id: uuid.UUID = implied_org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    source: str = Field(max_length=200)
    external_id: str = Field(max_length=200)
    store_id: uuid.UUID | None = None
    placed_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    item_count: int
    # Whether the persona was an active (enrolled, not archived) loyalty member
    # when the order was placed: spentAsMember and restore-credits read it.
    member_at_order: bool = False
    archived_at_order: bool = False
    referred_by_id: uuid.UUID | None = None
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (tenant_fk("order_id", "orders", ondelete="CASCADE"),)

    org_id: uuid.UUID = implied_org_id_field()
    order_id: uuid.UUID = Field(primary_key=True)
    line_no: int = Field(primary_key=True)
    product: str = Field(max_length=300)
    brand: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    quantity: int
    unit_price_cents: int


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("org_id", "source", "external_id"),
        tenant_fk("persona_id", "personas"),
        Index("ix_messages_persona_time", "org_id", "persona_id", "sent_at", "id"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    source: str = Field(max_length=200)
    external_id: str = Field(max_length=200)
    direction: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    body: str = Field(sa_column=Column(Text, nullable=False))
    campaign: str | None = Field(default=None, max_length=200)
    sent_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class SurveySubmission(SQLModel, table=True):
    __tablename__ = "survey_submissions"
    __table_args__ = (
        UniqueConstraint("org_id", "source", "external_id"),
        tenant_fk("persona_id", "personas"),
        Index("ix_survey_submissions_persona_time", "org_id", "persona_id", "submitted_at", "id"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    source: str = Field(max_length=200)
    external_id: str = Field(max_length=200)
    survey_name: str = Field(max_length=200)
    status: str = Field(max_length=16)
    # [{"question": ..., "answer": ...}, ...]
    answers: list[dict[str, str | None]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    submitted_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class PersonaAction(SQLModel, table=True):
    __tablename__ = "persona_actions"
    __table_args__ = (
        UniqueConstraint("org_id", "source", "external_id"),
        tenant_fk("persona_id", "personas"),
        Index("ix_persona_actions_persona_time", "org_id", "persona_id", "occurred_at", "id"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    source: str = Field(max_length=200)
    external_id: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    campaign: str | None = Field(default=None, max_length=200)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    occurred_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class PixelEvent(SQLModel, table=True):
    __tablename__ = "pixel_events"
    __table_args__ = (
        UniqueConstraint("org_id", "source", "external_id"),
        tenant_fk("persona_id", "personas"),
        Index("ix_pixel_events_persona_time", "org_id", "persona_id", "occurred_at", "id"),
    )

    org_id: uuid.UUID = org_id_field()
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    source: str = Field(max_length=200)
    external_id: str = Field(default_factory=lambda: str(new_id()), max_length=200)
    site: str = Field(max_length=300)
    event: str = Field(max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    occurred_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class HistoryCount(SQLModel, table=True):
    """How many rows of one history kind belong to a persona: the totalCount of the card's
    connections as one row each, not a count over a long history (11k ledger entries took
    ~2 ms to count). Kept by triggers on the history tables (migration 0005), in the
    transaction of every write, whatever path wrote it; never written by the application."""

    __tablename__ = "history_counts"

    org_id: uuid.UUID = implied_org_id_field()
    persona_id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    count: int
