"""search: each organization's name parts, and name indexes that answer without the heap

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 08:10:00

A partial-name search ("john") finds every persona whose whole name holds the
word, ranks them all and counts them. Through the trigram index of 0002 that
meant reading each match's heap row: ~33k rows in ~19k blocks at a million
personas, 90-140 ms of a 165 ms statement (bench/README.md, "Search at 1M
personas").

A word holds no space, so it is in the whole name exactly when it is in the
first name or in the last name. `persona_name_parts` keeps every distinct
lower-cased first and last name of an organization (a few thousand, whatever
the number of personas), with a trigram index: the parts holding the word are
found there, and the personas having one of them through the first- and
last-name indexes, which now carry in their keys the time and id a page is
ordered by and, included, the columns the Personas page's rules and the
ranking read, so that both the page and the count are index-only scans
(resolvers/search_names.py).

The parts are kept by triggers on personas, in the transaction of every write,
whatever path wrote it (ingestion, sign-ups, merges, a bulk COPY), and are
never deleted by them: a part no persona has any more matches nothing. Erasure
forgets the erased names' parts that no other persona has
(resolvers/privacy_erasure.py). So that it never forgets a part that a writer
is adding a persona with at that moment, every statement writing personas
first takes a shared advisory lock (NAME_PARTS_LOCK), which the erasure takes
exclusively before it looks (PostgreSQL; SQLite has one writer at a time).

The indexes change on PostgreSQL only (SQLite keeps 0002's, and searches by
LIKE); the table and its triggers exist on both.
"""

# S608: every statement here is assembled from this module's constants.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same key as resolvers/search_names.NAME_PARTS_LOCK (tests/test_search_names.py checks it).
NAME_PARTS_LOCK = 0x4E414D45
NAMES = ("first_name", "last_name")
# What a page and its count read besides the key: the names (ranking), the Personas page's rules.
INCLUDED = "first_name, last_name, merged_into_id, erased_at, archived_at"


def _parts_of(rows: str) -> str:
    return " UNION ".join(f"SELECT org_id, lower({n}) AS part FROM {rows} WHERE {n} IS NOT NULL" for n in NAMES)


PG_FUNCTIONS = [
    f"""
CREATE FUNCTION persona_name_parts_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared({NAME_PARTS_LOCK});
  RETURN NULL;
END $$""",
    f"""
CREATE FUNCTION persona_name_parts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO persona_name_parts (org_id, part)
  SELECT org_id, part FROM ({_parts_of("new_rows")}) AS parts ORDER BY org_id, part
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$""",
]
PG_TRIGGERS = [
    "CREATE TRIGGER persona_name_parts_writer BEFORE INSERT OR UPDATE ON personas"
    " FOR EACH STATEMENT EXECUTE FUNCTION persona_name_parts_writer()",
    "CREATE TRIGGER persona_name_parts_insert AFTER INSERT ON personas"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION persona_name_parts_add()",
    "CREATE TRIGGER persona_name_parts_update AFTER UPDATE ON personas"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION persona_name_parts_add()",
]


def _sqlite_add() -> str:
    return " ".join(
        f"INSERT OR IGNORE INTO persona_name_parts (org_id, part) SELECT NEW.org_id, lower(NEW.{n})"
        f" WHERE NEW.{n} IS NOT NULL;"
        for n in NAMES
    )


SQLITE_TRIGGERS = [
    f"CREATE TRIGGER persona_name_parts_insert AFTER INSERT ON personas BEGIN {_sqlite_add()} END",
    f"CREATE TRIGGER persona_name_parts_update AFTER UPDATE OF {', '.join(NAMES)} ON personas"
    f" BEGIN {_sqlite_add()} END",
]


def _name_index(name: str, covering: bool) -> str:
    column = f"ix_personas_{name}"
    if covering:
        return f"CREATE INDEX {column} ON personas (org_id, lower({name}), created_at, id) INCLUDE ({INCLUDED})"
    return f"CREATE INDEX {column} ON personas (org_id, lower({name}))"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "persona_name_parts",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("part", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("org_id", "part"),
    )
    op.execute(sa.text(f"INSERT INTO persona_name_parts (org_id, part) {_parts_of('personas')}"))
    if not postgresql:
        for statement in SQLITE_TRIGGERS:
            op.execute(sa.text(statement))
        return
    op.execute(sa.text("CREATE INDEX ix_persona_name_parts_trgm ON persona_name_parts USING gin (part gin_trgm_ops)"))
    for name in NAMES:
        op.execute(sa.text(f"DROP INDEX ix_personas_{name}"))
        op.execute(sa.text(_name_index(name, covering=True)))
    for statement in PG_FUNCTIONS + PG_TRIGGERS:
        op.execute(sa.text(statement))
    # An expression index has no statistics until its table is analyzed: the planner's estimates
    # for lower(name) = part come from them.
    op.execute(sa.text("ANALYZE personas, persona_name_parts"))


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for trigger in ("writer", "insert", "update") if postgresql else ("insert", "update"):
        op.execute(sa.text(f"DROP TRIGGER IF EXISTS persona_name_parts_{trigger}" + (" ON personas" if postgresql else "")))
    if postgresql:
        for function in ("writer", "add"):
            op.execute(sa.text(f"DROP FUNCTION persona_name_parts_{function}()"))
        for name in NAMES:
            op.execute(sa.text(f"DROP INDEX ix_personas_{name}"))
            op.execute(sa.text(_name_index(name, covering=False)))
    op.drop_table("persona_name_parts")
