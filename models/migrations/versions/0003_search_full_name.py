"""search: an index on the whole name, for "quoted name" search (PostgreSQL)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:40:00

A quoted name is an exact, case-insensitive match of the whole name:
resolvers/search_terms.py compares trim(<full name>) with it. Migration 0002
served it through the first-name index, then read every persona with that
first name to compare the whole name: at a million personas a common first
name is ~500-1,500 heap rows for one match (~14 ms cold, 1.4 ms warm here).
This btree index on the trimmed full name finds the match directly.

PostgreSQL only, like the trigram index of 0002: SQLite's expression indexes
cannot be reflected by SQLAlchemy, and there the first-name index (NOCASE)
serves the quoted name as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The full name exactly as resolvers/search_terms.py renders trim(FULL_NAME) (PostgreSQL's trim is btrim).
TRIMMED_FULL_NAME = "btrim(lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '')))"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(f"CREATE INDEX ix_personas_full_name ON personas (org_id, ({TRIMMED_FULL_NAME}))"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("DROP INDEX IF EXISTS ix_personas_full_name"))
