"""initial data model

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:57:48.271034
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from models.base import UTCDateTime
from alembic import op


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table("organizations",
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("slug", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("default_region", sa.String(length=2), nullable=False),
    sa.Column("points_per_dollar_milli", sa.Integer(), nullable=False),
    sa.Column("points_per_order", sa.Integer(), nullable=False),
    sa.Column("show_pin_in_wallets", sa.Boolean(), nullable=False),
    sa.Column("referral_points_enabled", sa.Boolean(), nullable=False),
    sa.Column("referral_points", sa.Integer(), nullable=False),
    sa.Column("points_expire_after_days", sa.Integer(), nullable=True),
    sa.Column("next_persona_number", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("slug")
    )
    op.create_table("api_keys",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("role", sa.String(length=32), nullable=False),
    sa.Column("prefix", sa.String(length=16), nullable=False),
    sa.Column("key_hash", sa.String(length=64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_prefix", ["prefix"], unique=False)

    op.create_table("audiences",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("query", sa.Text(), nullable=False),
    sa.Column("is_default", sa.Boolean(), nullable=False),
    sa.Column("points_multiplier_milli", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id"),
    sa.UniqueConstraint("org_id", "name")
    )
    op.create_table("audit_log",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("api_key_id", sa.Uuid(), nullable=True),
    sa.Column("actor", sa.String(length=200), nullable=False),
    sa.Column("role", sa.String(length=32), nullable=False),
    sa.Column("operation", sa.String(length=64), nullable=False),
    sa.Column("target_ids", sa.String(), nullable=False),
    sa.Column("outcome", sa.String(length=32), nullable=False),
    sa.Column("detail", sa.String(), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_time", ["org_id", "occurred_at"], unique=False)

    op.create_table("discounts",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("points_cost", sa.Integer(), nullable=False),
    sa.Column("starts_at", UTCDateTime(), nullable=True),
    sa.Column("ends_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    op.create_table("idempotency_records",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("key", sa.String(length=200), nullable=False),
    sa.Column("operation", sa.String(length=64), nullable=False),
    sa.Column("request_hash", sa.String(length=64), nullable=False),
    sa.Column("result", sa.String(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "key")
    )
    op.create_table("privacy_requests",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("action", sa.String(length=16), nullable=False),
    sa.Column("status", sa.String(length=32), nullable=False),
    sa.Column("contact_hashes", sa.String(), nullable=False),
    sa.Column("code_hash", sa.String(length=64), nullable=True),
    sa.Column("code_expires_at", UTCDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("personas_affected", sa.Integer(), nullable=False),
    sa.Column("requested_by", sa.String(length=200), nullable=True),
    sa.Column("requested_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    with op.batch_alter_table("privacy_requests", schema=None) as batch_op:
        batch_op.create_index("ix_privacy_requests_time", ["org_id", "requested_at", "id"], unique=False)

    op.create_table("stores",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id"),
    sa.UniqueConstraint("org_id", "name")
    )
    op.create_table("suppressions",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("contact_hash", sa.String(length=64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "contact_hash")
    )
    op.create_table("personas",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("number", sa.Integer(), nullable=False),
    sa.Column("first_name", sa.String(length=200), nullable=True),
    sa.Column("last_name", sa.String(length=200), nullable=True),
    sa.Column("email", sa.String(length=320), nullable=True),
    sa.Column("phone", sa.String(length=20), nullable=True),
    sa.Column("birthday", sa.Date(), nullable=True),
    sa.Column("source_kind", sa.String(length=16), nullable=False),
    sa.Column("source_name", sa.String(length=200), nullable=True),
    sa.Column("source_id", sa.String(length=200), nullable=True),
    sa.Column("favorite_store_id", sa.Uuid(), nullable=True),
    sa.Column("browser", sa.String(length=500), nullable=True),
    sa.Column("ip_address", sa.String(length=64), nullable=True),
    sa.Column("wallet_pin", sa.String(length=8), nullable=True),
    sa.Column("loyalty_member", sa.Boolean(), nullable=False),
    sa.Column("loyalty_signup_at", UTCDateTime(), nullable=True),
    sa.Column("referred_by_id", sa.Uuid(), nullable=True),
    sa.Column("sms_opt_out_at", UTCDateTime(), nullable=True),
    sa.Column("archived_at", UTCDateTime(), nullable=True),
    sa.Column("merged_into_id", sa.Uuid(), nullable=True),
    sa.Column("erased_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "favorite_store_id"], ["stores.org_id", "stores.id"], ),
    sa.ForeignKeyConstraint(["org_id", "merged_into_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id", "referred_by_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id"),
    sa.UniqueConstraint("org_id", "number")
    )
    with op.batch_alter_table("personas", schema=None) as batch_op:
        batch_op.create_index("ix_personas_list", ["org_id", "created_at", "id"], unique=False)

    op.create_table("consent_events",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("channel", sa.String(length=16), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("source", sa.String(length=16), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index("ix_consent_events_persona", ["org_id", "persona_id", "occurred_at"], unique=False)

    op.create_table("consents",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("channel", sa.String(length=16), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("source", sa.String(length=16), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "persona_id", "channel")
    )
    op.create_table("custom_attributes",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("key", sa.String(length=200), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("source", sa.String(length=16), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "persona_id", "key")
    )
    op.create_table("identity_keys",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("kind", sa.String(length=8), nullable=False),
    sa.Column("value", sa.String(length=320), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "kind", "value")
    )
    with op.batch_alter_table("identity_keys", schema=None) as batch_op:
        batch_op.create_index("ix_identity_keys_persona", ["org_id", "persona_id"], unique=False)

    op.create_table("merges",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("survivor_id", sa.Uuid(), nullable=False),
    sa.Column("merged_id", sa.Uuid(), nullable=False),
    sa.Column("merged_number", sa.Integer(), nullable=False),
    sa.Column("reason", sa.String(length=500), nullable=True),
    sa.Column("actor", sa.String(length=200), nullable=True),
    sa.Column("moved", sa.JSON(), nullable=False),
    sa.Column("merged_at", UTCDateTime(), nullable=False),
    sa.Column("undone_at", UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(["org_id", "merged_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id", "survivor_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.create_index("ix_merges_merged", ["org_id", "merged_id"], unique=False)
        batch_op.create_index("ix_merges_survivor_time", ["org_id", "survivor_id", "merged_at", "id"], unique=False)

    op.create_table("messages",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("source", sa.String(length=200), nullable=False),
    sa.Column("external_id", sa.String(length=200), nullable=False),
    sa.Column("direction", sa.String(length=16), nullable=False),
    sa.Column("channel", sa.String(length=16), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("campaign", sa.String(length=200), nullable=True),
    sa.Column("sent_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id"),
    sa.UniqueConstraint("org_id", "source", "external_id")
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_persona_time", ["org_id", "persona_id", "sent_at", "id"], unique=False)

    op.create_table("orders",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("source", sa.String(length=200), nullable=False),
    sa.Column("external_id", sa.String(length=200), nullable=False),
    sa.Column("store_id", sa.Uuid(), nullable=True),
    sa.Column("placed_at", UTCDateTime(), nullable=False),
    sa.Column("subtotal_cents", sa.Integer(), nullable=False),
    sa.Column("tax_cents", sa.Integer(), nullable=False),
    sa.Column("total_cents", sa.Integer(), nullable=False),
    sa.Column("item_count", sa.Integer(), nullable=False),
    sa.Column("member_at_order", sa.Boolean(), nullable=False),
    sa.Column("archived_at_order", sa.Boolean(), nullable=False),
    sa.Column("referred_by_id", sa.Uuid(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id", "store_id"], ["stores.org_id", "stores.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id"),
    sa.UniqueConstraint("org_id", "source", "external_id")
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_persona_time", ["org_id", "persona_id", "placed_at", "id"], unique=False)

    op.create_table("persona_actions",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("source", sa.String(length=200), nullable=False),
    sa.Column("external_id", sa.String(length=200), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("campaign", sa.String(length=200), nullable=True),
    sa.Column("detail", sa.Text(), nullable=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id"),
    sa.UniqueConstraint("org_id", "source", "external_id")
    )
    with op.batch_alter_table("persona_actions", schema=None) as batch_op:
        batch_op.create_index("ix_persona_actions_persona_time", ["org_id", "persona_id", "occurred_at", "id"], unique=False)

    op.create_table("persona_rollups",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("points_balance", sa.Integer(), nullable=False),
    sa.Column("orders_count", sa.Integer(), nullable=False),
    sa.Column("items_count", sa.Integer(), nullable=False),
    sa.Column("spend_total_cents", sa.Integer(), nullable=False),
    sa.Column("spend_subtotal_cents", sa.Integer(), nullable=False),
    sa.Column("spend_member_subtotal_cents", sa.Integer(), nullable=False),
    sa.Column("first_order_at", UTCDateTime(), nullable=True),
    sa.Column("last_order_at", UTCDateTime(), nullable=True),
    sa.Column("points_order", sa.Integer(), nullable=False),
    sa.Column("points_visit", sa.Integer(), nullable=False),
    sa.Column("points_referral_sale", sa.Integer(), nullable=False),
    sa.Column("points_redemption", sa.Integer(), nullable=False),
    sa.Column("points_staff_adjustment", sa.Integer(), nullable=False),
    sa.Column("points_audience_boost", sa.Integer(), nullable=False),
    sa.Column("points_campaign_gift", sa.Integer(), nullable=False),
    sa.Column("points_flow_gift", sa.Integer(), nullable=False),
    sa.Column("points_collectible", sa.Integer(), nullable=False),
    sa.Column("points_legacy_import", sa.Integer(), nullable=False),
    sa.Column("points_expiration", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "persona_id")
    )
    with op.batch_alter_table("persona_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_persona_rollups_balance", ["org_id", "points_balance"], unique=False)
        batch_op.create_index("ix_persona_rollups_last_order", ["org_id", "last_order_at"], unique=False)
        batch_op.create_index("ix_persona_rollups_spend", ["org_id", "spend_total_cents"], unique=False)

    op.create_table("persona_tags",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("tag", sa.String(length=200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "persona_id", "tag")
    )
    op.create_table("pixel_events",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("source", sa.String(length=200), nullable=False),
    sa.Column("external_id", sa.String(length=200), nullable=False),
    sa.Column("site", sa.String(length=300), nullable=False),
    sa.Column("event", sa.String(length=200), nullable=False),
    sa.Column("url", sa.String(length=2000), nullable=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id"),
    sa.UniqueConstraint("org_id", "source", "external_id")
    )
    with op.batch_alter_table("pixel_events", schema=None) as batch_op:
        batch_op.create_index("ix_pixel_events_persona_time", ["org_id", "persona_id", "occurred_at", "id"], unique=False)

    op.create_table("purchase_counts",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("dimension", sa.String(length=16), nullable=False),
    sa.Column("name", sa.String(length=300), nullable=False),
    sa.Column("order_count", sa.Integer(), nullable=False),
    sa.Column("last_purchased_at", UTCDateTime(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "persona_id", "dimension", "name")
    )
    op.create_table("redemptions",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("discount_id", sa.Uuid(), nullable=False),
    sa.Column("discount_name", sa.String(length=200), nullable=False),
    sa.Column("points", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("actor", sa.String(length=200), nullable=True),
    sa.Column("redeemed_at", UTCDateTime(), nullable=False),
    sa.Column("reversed_at", UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(["org_id", "discount_id"], ["discounts.org_id", "discounts.id"], ),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_redemptions_persona_time", ["org_id", "persona_id", "redeemed_at", "id"], unique=False)

    op.create_table("signup_submissions",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("form_name", sa.String(length=200), nullable=False),
    sa.Column("url", sa.String(length=2000), nullable=False),
    sa.Column("ip_address", sa.String(length=64), nullable=True),
    sa.Column("user_agent", sa.String(length=500), nullable=True),
    sa.Column("signature", sa.Text(), nullable=True),
    sa.Column("submitted_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    with op.batch_alter_table("signup_submissions", schema=None) as batch_op:
        batch_op.create_index("ix_signup_submissions_persona", ["org_id", "persona_id", "submitted_at"], unique=False)

    op.create_table("survey_submissions",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("source", sa.String(length=200), nullable=False),
    sa.Column("external_id", sa.String(length=200), nullable=False),
    sa.Column("survey_name", sa.String(length=200), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("answers", sa.JSON(), nullable=False),
    sa.Column("submitted_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id"),
    sa.UniqueConstraint("org_id", "source", "external_id")
    )
    with op.batch_alter_table("survey_submissions", schema=None) as batch_op:
        batch_op.create_index("ix_survey_submissions_persona_time", ["org_id", "persona_id", "submitted_at", "id"], unique=False)

    op.create_table("order_lines",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("order_id", sa.Uuid(), nullable=False),
    sa.Column("line_no", sa.Integer(), nullable=False),
    sa.Column("product", sa.String(length=300), nullable=False),
    sa.Column("brand", sa.String(length=200), nullable=True),
    sa.Column("category", sa.String(length=200), nullable=True),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("unit_price_cents", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "order_id"], ["orders.org_id", "orders.id"], ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "order_id", "line_no")
    )
    op.create_table("points_entries",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("persona_id", sa.Uuid(), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("delta", sa.Integer(), nullable=False),
    sa.Column("balance_after", sa.Integer(), nullable=False),
    sa.Column("note", sa.String(length=1000), nullable=True),
    sa.Column("order_id", sa.Uuid(), nullable=True),
    sa.Column("redemption_id", sa.Uuid(), nullable=True),
    sa.Column("actor", sa.String(length=200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "order_id"], ["orders.org_id", "orders.id"], ),
    sa.ForeignKeyConstraint(["org_id", "persona_id"], ["personas.org_id", "personas.id"], ),
    sa.ForeignKeyConstraint(["org_id", "redemption_id"], ["redemptions.org_id", "redemptions.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "id")
    )
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.create_index("ix_points_entries_order", ["org_id", "order_id"], unique=False)
        batch_op.create_index("ix_points_entries_persona_time", ["org_id", "persona_id", "created_at", "id"], unique=False)

    op.create_table("legacy_point_imports",
    sa.Column("org_id", sa.Uuid(), nullable=False),
    sa.Column("source", sa.String(length=200), nullable=False),
    sa.Column("source_id", sa.String(length=200), nullable=False),
    sa.Column("entry_id", sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(["org_id", "entry_id"], ["points_entries.org_id", "points_entries.id"], ),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ),
    sa.PrimaryKeyConstraint("org_id", "source", "source_id")
    )



def downgrade() -> None:

    op.drop_table("legacy_point_imports")
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_points_entries_persona_time")
        batch_op.drop_index("ix_points_entries_order")

    op.drop_table("points_entries")
    op.drop_table("order_lines")
    with op.batch_alter_table("survey_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_submissions_persona_time")

    op.drop_table("survey_submissions")
    with op.batch_alter_table("signup_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_signup_submissions_persona")

    op.drop_table("signup_submissions")
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_persona_time")

    op.drop_table("redemptions")
    op.drop_table("purchase_counts")
    with op.batch_alter_table("pixel_events", schema=None) as batch_op:
        batch_op.drop_index("ix_pixel_events_persona_time")

    op.drop_table("pixel_events")
    op.drop_table("persona_tags")
    with op.batch_alter_table("persona_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_persona_rollups_spend")
        batch_op.drop_index("ix_persona_rollups_last_order")
        batch_op.drop_index("ix_persona_rollups_balance")

    op.drop_table("persona_rollups")
    with op.batch_alter_table("persona_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_persona_actions_persona_time")

    op.drop_table("persona_actions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_persona_time")

    op.drop_table("orders")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_persona_time")

    op.drop_table("messages")
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.drop_index("ix_merges_survivor_time")
        batch_op.drop_index("ix_merges_merged")

    op.drop_table("merges")
    with op.batch_alter_table("identity_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_keys_persona")

    op.drop_table("identity_keys")
    op.drop_table("custom_attributes")
    op.drop_table("consents")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_persona")

    op.drop_table("consent_events")
    with op.batch_alter_table("personas", schema=None) as batch_op:
        batch_op.drop_index("ix_personas_list")

    op.drop_table("personas")
    op.drop_table("suppressions")
    op.drop_table("stores")
    with op.batch_alter_table("privacy_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_privacy_requests_time")

    op.drop_table("privacy_requests")
    op.drop_table("idempotency_records")
    op.drop_table("discounts")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_time")

    op.drop_table("audit_log")
    op.drop_table("audiences")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_prefix")

    op.drop_table("api_keys")
    op.drop_table("organizations")

