"""history: each persona's row count per history kind, kept by triggers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 04:10:00

The card shows the totalCount of eight history connections. Counted on every
read, they grew with the persona's history: 11k ledger entries and 5,000
orders took ~3 ms of the card's statement (a persona with 5,000 orders was
served 1.3x slower than one with 5; bench/README.md). `history_counts` holds
one row per (organization, persona, kind), kept by triggers on the eight
history tables in the transaction of each write, whatever path wrote it
(ingestion, merges and their undoing, privacy erasure, a bulk COPY).

PostgreSQL: statement-level triggers over transition tables, one upsert of the
statement's net change per persona, taken in (org, persona) order so that two
writers of the same personas lock their rows in the same order. SQLite: row
triggers. A merge counts for both personas it names, as the merges connection
lists it for both.
"""

# S608: every statement here is assembled from this module's constants (table, column and kind names).
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (kind, the columns naming the persona a row belongs to): resolvers/history.KINDS.
COUNTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "points_entries": ("POINTS", ("persona_id",)),
    "orders": ("ORDER", ("persona_id",)),
    "messages": ("MESSAGE", ("persona_id",)),
    "redemptions": ("REDEMPTION", ("persona_id",)),
    "merges": ("MERGE", ("survivor_id", "merged_id")),
    "survey_submissions": ("SURVEY", ("persona_id",)),
    "persona_actions": ("ACTION", ("persona_id",)),
    "pixel_events": ("PIXEL_EVENT", ("persona_id",)),
}


def _owners(rows: str, columns: tuple[str, ...], sign: int) -> str:
    """(org_id, persona_id, change) for each persona named by each row of `rows`."""
    return " UNION ALL ".join(f"SELECT org_id, {c} AS persona_id, {sign} AS change FROM {rows}" for c in columns)


def _moved(columns: tuple[str, ...], side: str) -> str:
    """An UPDATE's rows whose persona changed, as they were (side "o") or are now ("n"):
    transition tables take no column list, so the trigger fires for every UPDATE, and a
    reversal or an undone_at changes no count."""
    moved = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in columns)
    both = "old_rows o JOIN new_rows n ON n.org_id = o.org_id AND n.id = o.id"
    return f"(SELECT {side}.* FROM {both} WHERE {moved}) AS moved"


def _pg_function(table: str, kind: str, columns: tuple[str, ...]) -> str:
    def upsert(changes: str) -> str:
        return f"""
    INSERT INTO history_counts AS c (org_id, persona_id, kind, count)
    SELECT org_id, persona_id, '{kind}', sum(change) FROM ({changes}) AS changes
    GROUP BY org_id, persona_id HAVING sum(change) <> 0 ORDER BY org_id, persona_id
    ON CONFLICT (org_id, persona_id, kind) DO UPDATE SET count = c.count + excluded.count;"""

    moved = f"{_owners(_moved(columns, 'n'), columns, 1)} UNION ALL {_owners(_moved(columns, 'o'), columns, -1)}"
    return f"""
CREATE FUNCTION history_count_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN{upsert(_owners("new_rows", columns, 1))}
  ELSIF TG_OP = 'DELETE' THEN{upsert(_owners("old_rows", columns, -1))}
  ELSE{upsert(moved)}
  END IF;
  RETURN NULL;
END $$"""


def _pg_triggers(table: str) -> list[str]:
    each = f"FOR EACH STATEMENT EXECUTE FUNCTION history_count_{table}()"
    return [
        f"CREATE TRIGGER history_count_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows {each}",
        f"CREATE TRIGGER history_count_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows {each}",
        f"CREATE TRIGGER history_count_update AFTER UPDATE ON {table}"
        f" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows {each}",
    ]


def _sqlite_triggers(table: str, kind: str, columns: tuple[str, ...]) -> list[str]:
    def add(row: str, column: str, change: int) -> str:
        return (
            f"INSERT INTO history_counts (org_id, persona_id, kind, count) "
            f"SELECT {row}.org_id, {row}.{column}, '{kind}', {change} WHERE true "
            f"ON CONFLICT (org_id, persona_id, kind) DO UPDATE SET count = count + {change};"
        )

    added = " ".join(add("NEW", c, 1) for c in columns)
    removed = " ".join(add("OLD", c, -1) for c in columns)
    return [
        f"CREATE TRIGGER history_count_{table}_insert AFTER INSERT ON {table} BEGIN {added} END",
        f"CREATE TRIGGER history_count_{table}_delete AFTER DELETE ON {table} BEGIN {removed} END",
        f"CREATE TRIGGER history_count_{table}_update AFTER UPDATE OF {', '.join(columns)} ON {table} "
        f"BEGIN {removed} {added} END",
    ]


def upgrade() -> None:
    op.create_table(
        "history_counts",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("persona_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "persona_id", "kind"),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (kind, columns) in COUNTED.items():
        op.execute(
            sa.text(
                f"INSERT INTO history_counts (org_id, persona_id, kind, count) "
                f"SELECT org_id, persona_id, '{kind}', sum(change) FROM ({_owners(table, columns, 1)}) AS owners "
                f"GROUP BY org_id, persona_id"
            )
        )
        statements = (
            [_pg_function(table, kind, columns), *_pg_triggers(table)]
            if postgresql
            else _sqlite_triggers(table, kind, columns)
        )
        for statement in statements:
            op.execute(sa.text(statement))


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in COUNTED:
        if postgresql:
            for name in ("insert", "delete", "update"):
                op.execute(sa.text(f"DROP TRIGGER history_count_{name} ON {table}"))
            op.execute(sa.text(f"DROP FUNCTION history_count_{table}()"))
        else:
            for name in ("insert", "delete", "update"):
                op.execute(sa.text(f"DROP TRIGGER history_count_{table}_{name}"))
    op.drop_table("history_counts")
