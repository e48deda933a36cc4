"""Planner statistics kept up with a bulk import's growth (PostgreSQL).

PostgreSQL plans a table it has not analyzed since it was nearly empty as a
nearly empty one. The foreign keys' checks, whose plans each connection keeps,
then read it by a sequential scan: every contact an import writes costs a scan
of all it wrote before (bench/README.md, Ingestion, session 12: 1,545 us of
checks a new contact, against 15 once analyzed). Autovacuum analyzes it in the
end, a minute or more later; an import into a new database, or into tables that
are small beside it, analyzes what it writes each time it has doubled them.
"""

from __future__ import annotations

from sqlalchemy import text

from database import Database

# What a contact's import writes to (resolvers/ingest_batch.py, resolvers/rollup_batch.py).
TABLES = (
    "personas",
    "identity_keys",
    "custom_attributes",
    "persona_tags",
    "consents",
    "consent_events",
    "persona_rollups",
    "persona_export_cells",
    "persona_name_parts",
    "points_entries",
    "legacy_point_imports",
)
MIN_ROWS = 1_000  # no ANALYZE before this many rows: a few batches


class GrowthStatistics:
    """Counts an import's rows; ANALYZE of its tables once it has written as many as the personas
    table held at the last count (PostgreSQL's estimate), and at least MIN_ROWS."""

    def __init__(self, db: Database, min_rows: int = MIN_ROWS) -> None:
        self.db, self.min_rows = db, min_rows
        self.known: int | None = None  # personas at the last ANALYZE, as PostgreSQL estimates them
        self.since = 0

    async def wrote(self, rows: int) -> None:
        if self.db.is_sqlite:
            return
        if self.known is None:
            async with self.db.engine.connect() as conn:
                found = await conn.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'personas'::regclass"))
            self.known = max(int(found or 0), 0)  # -1: never analyzed
        self.since += rows
        if self.since < max(self.min_rows, self.known):
            return
        async with self.db.engine.connect() as conn:
            await conn.execute(text(f"ANALYZE {', '.join(TABLES)}"))
            await conn.commit()
        self.known += self.since
        self.since = 0
