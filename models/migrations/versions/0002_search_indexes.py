"""search indexes: names (pg_trgm on PostgreSQL), smart conditions, audiences

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:00:00

Exact phone and email search go through identity_keys' primary key
(org_id, kind, value), which 0001 made already. Here, for each search form
and smart condition, the index that serves it:

- name contains: a trigram GIN index on the lower-cased full name
  (PostgreSQL; SQLite has no trigram index, so it scans the organization);
- exact (quoted) names, tags, attribute keys, store and source names:
  case-insensitive indexes, as lower(column) expressions on PostgreSQL and
  as COLLATE NOCASE columns on SQLite (SQLite's expression indexes cannot be
  reflected by SQLAlchemy, and NOCASE is what SQLite compares with anyway);
- has:, is:: partial indexes in the Personas page order;
- opted_in/opted_out, orders, signed_up, store: plain btree indexes;
  points, spent and last_seen use the rollup indexes of 0001.

resolvers/search.py renders each condition in exactly the form indexed here.
The pg_trgm extension stays on downgrade: it may have been there before, and
other schemas of the database may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The full name as search compares it; the same text as resolvers/search.py renders.
FULL_NAME = "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))"


def _ci(column: str, postgresql: bool) -> str:
    """A case-insensitive key: lower() on PostgreSQL, the NOCASE collation on SQLite."""
    return f"lower({column})" if postgresql else f"{column} COLLATE NOCASE"


def _indexes(postgresql: bool) -> list[tuple[str, str, list[str], str | None]]:
    """(name, table, key parts, WHERE of a partial index or None)."""
    ci = lambda column: _ci(column, postgresql)  # noqa: E731
    attribute_value = "lower(substr(value, 1, 200))" if postgresql else "value COLLATE NOCASE"
    member = "loyalty_member" if postgresql else "loyalty_member = 1"
    return [
        ("ix_personas_first_name", "personas", ["org_id", ci("first_name")], None),
        ("ix_personas_last_name", "personas", ["org_id", ci("last_name")], None),
        ("ix_personas_has_phone", "personas", ["org_id", "created_at", "id"], "phone IS NOT NULL"),
        ("ix_personas_has_email", "personas", ["org_id", "created_at", "id"], "email IS NOT NULL"),
        ("ix_personas_loyalty_member", "personas", ["org_id", "created_at", "id"], member),
        ("ix_personas_archived", "personas", ["org_id", "archived_at"], "archived_at IS NOT NULL"),
        ("ix_personas_signed_up", "personas", ["org_id", "loyalty_signup_at"], None),
        ("ix_personas_source", "personas", ["org_id", "source_kind", ci("source_name")], None),
        ("ix_personas_favorite_store", "personas", ["org_id", "favorite_store_id"], None),
        ("ix_consents_channel_status", "consents", ["org_id", "channel", "status", "persona_id"], None),
        ("ix_persona_tags_tag", "persona_tags", ["org_id", ci("tag"), "persona_id"], None),
        (
            "ix_custom_attributes_key_value",
            "custom_attributes",
            ["org_id", ci("key"), attribute_value, "persona_id"],
            None,
        ),
        ("ix_orders_store", "orders", ["org_id", "store_id", "persona_id"], None),
        ("ix_stores_name", "stores", ["org_id", ci("name")], None),
        ("ix_persona_rollups_orders", "persona_rollups", ["org_id", "orders_count"], None),
    ]


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    postgresql = _is_postgresql()
    for name, table, parts, where in _indexes(postgresql):
        clause = f" WHERE {where}" if where else ""
        op.execute(sa.text(f"CREATE INDEX {name} ON {table} ({', '.join(parts)}){clause}"))
    if postgresql:
        # Trusted since PostgreSQL 13: a database owner may create it.
        op.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        op.execute(sa.text(f"CREATE INDEX ix_personas_name_trgm ON personas USING gin (({FULL_NAME}) gin_trgm_ops)"))


def downgrade() -> None:
    postgresql = _is_postgresql()
    if postgresql:
        op.execute(sa.text("DROP INDEX IF EXISTS ix_personas_name_trgm"))
    for name, _table, _parts, _where in reversed(_indexes(postgresql)):
        op.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
