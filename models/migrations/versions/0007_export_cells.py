"""export: each persona's tags and consents as the CSV export writes them, kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 11:30:00

The CSV export writes a persona's tags in one cell and its status on each of
eight channels. Read per exported persona (an aggregate over its tags, another
over its consents: two index lookups a row), they were more than half of an
export's time in PostgreSQL: 10k rows took ~260 ms, ~110 ms of it those
lookups, and the whole organization's export aggregated every tag and consent
first (bench/README.md, "CSV export"). `persona_export_cells` holds them as
one row per persona, joined like the rollups.

Kept by triggers on persona_tags and consents, in the transaction of every
write, whatever path wrote it (ingestion, the card's mutations, merges and
their undoing, privacy requests). A row is there for every persona that has a
tag or a consent; a persona that has neither may have none.

A cell is recomputed from the persona's rows rather than adjusted, so two
writers of one persona must not both recompute from what they each saw: on
PostgreSQL the trigger first locks the personas' rows here (made if missing,
in (org, persona) order), and recomputes in a later statement, whose snapshot
(READ COMMITTED) holds whatever the writer it waited for committed. SQLite
has one writer at a time (row triggers).
"""

# S608: every statement here is assembled from this module's constants (table, column and channel names).
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CELLS = "persona_export_cells"
# models.enums.Channel, as of this revision.
CHANNELS = ("LOYALTY", "TEXT", "EMAIL", "MOBILE_PUSH", "BROWSER_PUSH", "VOICE_DROP", "WALLET_PASS", "AGE_GATE")
TAG_SEPARATOR = "; "
KEY = ("org_id", "persona_id")


def _consent_column(channel: str) -> str:
    return f"consent_{channel.lower()}"


# source table -> its cells for the persona (k.org_id, k.persona_id), one aggregate (one row) on PostgreSQL
PG_CELLS: dict[str, str] = {
    # Code point order (the C collation), as Python sorts.
    "persona_tags": f"SELECT string_agg(t.tag, '{TAG_SEPARATOR}' ORDER BY t.tag COLLATE \"C\") AS tags"
    " FROM persona_tags t WHERE t.org_id = k.org_id AND t.persona_id = k.persona_id",
    # One consent row per channel at most.
    "consents": "SELECT "
    + ", ".join(f"max(c.status) FILTER (WHERE c.channel = '{ch}') AS {_consent_column(ch)}" for ch in CHANNELS)
    + " FROM consents c WHERE c.org_id = k.org_id AND c.persona_id = k.persona_id",
}
COLUMNS: dict[str, tuple[str, ...]] = {
    "persona_tags": ("tags",),
    "consents": tuple(_consent_column(channel) for channel in CHANNELS),
}


def _keys(*rows: str) -> str:
    """The distinct personas the rows belong to."""
    return " UNION ".join(f"SELECT DISTINCT org_id, persona_id FROM {r}" for r in rows)


def _fresh(tables: Sequence[str]) -> str:
    """The cells of these source tables for each persona of k, as the rows are now."""
    return ", ".join(f"LATERAL ({PG_CELLS[table]}) AS {table}_cells" for table in tables)


def _pg_refresh(table: str, changed: str, made: str | None) -> str:
    """Lock (making where `made` names rows that may be new) the changed personas' cell rows, then
    set the table's cells from what is committed now and this transaction's own writes."""
    columns = COLUMNS[table]
    # A missing row is made with its cells (then left alone below): only where missing as this
    # statement sees it, which is cheaper than a conflict for each existing row; a row that another
    # writer has made and not yet committed still conflicts, waits for it, and is recomputed below.
    missing = f"NOT EXISTS (SELECT 1 FROM {CELLS} x WHERE x.org_id = k.org_id AND x.persona_id = k.persona_id)"
    make = (
        f"INSERT INTO {CELLS} (org_id, persona_id, {', '.join(columns)})"
        f" {_fresh_rows(table, _keys(made), where=missing)} ORDER BY k.org_id, k.persona_id ON CONFLICT DO NOTHING;"
        if made
        else ""
    )
    assign = ", ".join(f"{c} = fresh.{c}" for c in columns)
    differs = " OR ".join(f"x.{c} IS DISTINCT FROM fresh.{c}" for c in columns)
    return f"""
    {make}
    PERFORM 1 FROM {CELLS} x WHERE (x.org_id, x.persona_id) IN ({changed})
    ORDER BY x.org_id, x.persona_id FOR UPDATE;
    UPDATE {CELLS} x SET {assign} FROM ({_fresh_rows(table, changed)}) AS fresh
    WHERE x.org_id = fresh.org_id AND x.persona_id = fresh.persona_id AND ({differs});"""


def _fresh_rows(table: str, keys: str, where: str = "true") -> str:
    """(org_id, persona_id, the table's cells) of each persona of `keys` (as k), as the rows are now."""
    return f"SELECT k.org_id, k.persona_id, {table}_cells.* FROM ({keys}) AS k, {_fresh([table])} WHERE {where}"


def _pg_function(table: str) -> str:
    return f"""
CREATE FUNCTION {CELLS}_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN{_pg_refresh(table, _keys("new_rows"), "new_rows")}
  ELSIF TG_OP = 'DELETE' THEN{_pg_refresh(table, _keys("old_rows"), None)}
  ELSE{_pg_refresh(table, _keys("old_rows", "new_rows"), "new_rows")}
  END IF;
  RETURN NULL;
END $$"""


def _pg_triggers(table: str) -> list[str]:
    each = f"FOR EACH STATEMENT EXECUTE FUNCTION {CELLS}_{table}()"
    return [
        f"CREATE TRIGGER {CELLS}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows {each}",
        f"CREATE TRIGGER {CELLS}_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows {each}",
        f"CREATE TRIGGER {CELLS}_update AFTER UPDATE ON {table}"
        f" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows {each}",
    ]


SQLITE_CELLS: dict[str, dict[str, str]] = {
    # SQLite 3.40 has no ORDER BY in group_concat, which keeps the order of the rows it is given;
    # its BINARY collation is code point order.
    "persona_tags": {
        "tags": f"(SELECT group_concat(tag, '{TAG_SEPARATOR}') FROM (SELECT t.tag FROM persona_tags t"
        " WHERE t.org_id = {row}.org_id AND t.persona_id = {row}.persona_id ORDER BY t.tag))"
    },
    "consents": {
        _consent_column(channel): "(SELECT c.status FROM consents c WHERE c.org_id = {row}.org_id"
        f" AND c.persona_id = {{row}}.persona_id AND c.channel = '{channel}')"
        for channel in CHANNELS
    },
}


def _sqlite_triggers(table: str) -> list[str]:
    def refresh(row: str) -> str:
        assign = ", ".join(f"{c} = {e.format(row=row)}" for c, e in SQLITE_CELLS[table].items())
        return f"UPDATE {CELLS} SET {assign} WHERE org_id = {row}.org_id AND persona_id = {row}.persona_id;"

    # Not INSERT OR IGNORE: a trigger's statements take the conflict policy of the statement that
    # fired it where that has one (an upsert's), so the row is made only where it is missing.
    mine = f"SELECT 1 FROM {CELLS} WHERE org_id = NEW.org_id AND persona_id = NEW.persona_id"
    make = f"INSERT INTO {CELLS} (org_id, persona_id) SELECT NEW.org_id, NEW.persona_id WHERE NOT EXISTS ({mine});"
    name = f"{CELLS}_{table}"
    return [
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN {make} {refresh('NEW')} END",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN {refresh('OLD')} END",
        f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table} BEGIN {make} {refresh('OLD')} {refresh('NEW')} END",
    ]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        CELLS,
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("persona_id", sa.Uuid(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=True),
        *(sa.Column(_consent_column(channel), sa.String(length=16), nullable=True) for channel in CHANNELS),
        sa.PrimaryKeyConstraint(*KEY),
    )
    if postgresql:
        # Room on each page for a row's next version: a change of tags or consents is then an update
        # in place of the heap page, its key left in the index (HOT).
        op.execute(sa.text(f"ALTER TABLE {CELLS} SET (fillfactor = 70)"))
    keys = _keys(*COLUMNS)
    columns = ", ".join(c for table in COLUMNS.values() for c in table)
    if postgresql:
        fresh = f"SELECT k.org_id, k.persona_id, {columns} FROM ({keys}) AS k, {_fresh(list(COLUMNS))}"
    else:
        values = ", ".join(e.format(row="k") for table in SQLITE_CELLS.values() for e in table.values())
        fresh = f"SELECT k.org_id, k.persona_id, {values} FROM ({keys}) AS k"
    op.execute(sa.text(f"INSERT INTO {CELLS} (org_id, persona_id, {columns}) {fresh}"))
    for table in COLUMNS:
        for statement in [_pg_function(table), *_pg_triggers(table)] if postgresql else _sqlite_triggers(table):
            op.execute(sa.text(statement))
    if postgresql:
        op.execute(sa.text(f"ANALYZE {CELLS}"))


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in COLUMNS:
        for event in ("insert", "delete", "update"):
            if postgresql:
                op.execute(sa.text(f"DROP TRIGGER {CELLS}_{event} ON {table}"))
            else:
                op.execute(sa.text(f"DROP TRIGGER {CELLS}_{table}_{event}"))
        if postgresql:
            op.execute(sa.text(f"DROP FUNCTION {CELLS}_{table}()"))
    op.drop_table(CELLS)
