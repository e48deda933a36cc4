"""tenancy: drop the org_id foreign keys that a composite tenant foreign key implies (PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 23:30:00

Each table below belongs to a persona, an order or a ledger entry through a
tenant foreign key on a NOT NULL column, e.g. (org_id, persona_id) ->
personas (org_id, id): the row it points at has that org_id, and personas'
own foreign key holds org_id to organizations. A second foreign key of org_id
alone to organizations checks the same thing again, for every row inserted:
ingestion writes ~10 such rows per new contact and per order (identity keys,
consents and their events, attributes, tags, rollups; lines, ledger entries,
purchase counts), each a `SELECT ... FROM organizations ... FOR KEY SHARE`
(2-3 us of the server's time apiece, bench/ingest_throughput.py --pg-stats).

The tenant rules stay (tests/test_migrations.py): org_id leads every key, and
every foreign key between tenant tables. Tables with a tenant foreign key on a
nullable column only (or none) keep theirs, and so does personas.

PostgreSQL only, like 0003: SQLite names no foreign key, so dropping one means
copying the table, and there the check costs the development database little.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the tenant foreign key (on NOT NULL columns) that implies its org_id's.
IMPLIED_BY = {
    "identity_keys": "(org_id, persona_id) -> personas",
    "custom_attributes": "(org_id, persona_id) -> personas",
    "persona_tags": "(org_id, persona_id) -> personas",
    "consents": "(org_id, persona_id) -> personas",
    "consent_events": "(org_id, persona_id) -> personas",
    "persona_rollups": "(org_id, persona_id) -> personas",
    "purchase_counts": "(org_id, persona_id) -> personas",
    "orders": "(org_id, persona_id) -> personas",
    "points_entries": "(org_id, persona_id) -> personas",
    "order_lines": "(org_id, order_id) -> orders",
    "legacy_point_imports": "(org_id, entry_id) -> points_entries",
}

# The foreign keys of org_id alone to organizations, by name (0001 left PostgreSQL to name them).
ORG_ONLY_KEYS = """
SELECT c.conname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f'
  AND c.conrelid = CAST(:table AS regclass)
  AND c.confrelid = CAST('organizations' AS regclass)
  AND array_length(c.conkey, 1) = 1
  AND a.attname = 'org_id'
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in IMPLIED_BY:
        for (name,) in bind.execute(sa.text(ORG_ONLY_KEYS), {"table": table}):
            op.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in IMPLIED_BY:
        if bind.execute(sa.text(ORG_ONLY_KEYS), {"table": table}).first() is None:
            op.execute(
                sa.text(
                    f"ALTER TABLE {table} ADD CONSTRAINT {table}_org_id_fkey"
                    " FOREIGN KEY (org_id) REFERENCES organizations (id)"
                )
            )
