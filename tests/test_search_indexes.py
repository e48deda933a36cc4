"""personas(query:) and the indexes exact search relies on: over a crowd of personas
with fresh planner statistics, each search form reads its index on SQLite and
PostgreSQL, and exact phone and email search never scan a table."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, text
from sqlmodel import SQLModel

from database import Database
from models import Organization
from models.base import new_id, utcnow
from models.tables import PERSONAS
from resolvers.search import parse_search
from resolvers.search_sql import compile_search
from resolvers.search_terms import Dialect

CROWD = 3000
FIRST_NAMES = ["Ann", "Bea", "Cy", "Dov", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo", "Kai", "Lu", "Mo", "Ned", "Oz"]
LAST_NAMES = ["Lee", "Park", "Stone", "Reyes", "Nakamura", "Okafor", "Silva", "Novak", "Haddad", "Berg"]


@pytest.fixture
async def crowd(db: Database, org: Organization) -> None:
    """Enough personas, keys, tags, attributes, consents and rollups for the planners to
    prefer the selective indexes, loaded in bulk, then ANALYZEd."""
    persona_rows, key_rows, tag_rows, attribute_rows, consent_rows, rollup_rows = [], [], [], [], [], []
    now = utcnow()
    for n in range(CROWD):
        id_ = new_id()
        first, last = FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[(n // 7) % len(LAST_NAMES)]
        phone, email = f"+1415{2_000_000 + n:07d}", f"person{n}@example.com"
        persona_rows.append(
            {
                "org_id": org.id,
                "id": id_,
                "number": 10_000 + n,
                "first_name": f"{first}{n}",
                "last_name": last,
                "email": email,
                "phone": phone,
                "source_kind": "RAW_FILE",
                "loyalty_member": n % 2 == 0,
                "created_at": now - dt.timedelta(minutes=n),
                "updated_at": now,
            }
        )
        key_rows += [
            {"org_id": org.id, "kind": "phone", "value": phone, "persona_id": id_, "created_at": now},
            {"org_id": org.id, "kind": "email", "value": email, "persona_id": id_, "created_at": now},
        ]
        tag_rows.append({"org_id": org.id, "persona_id": id_, "tag": f"tag{n % 50}", "created_at": now})
        attribute_rows.append(
            {
                "org_id": org.id,
                "persona_id": id_,
                "key": "tier",
                "value": f"t{n % 40}",
                "source": "MANUAL",
                "updated_at": now,
            }
        )
        consent_rows.append(
            {
                "org_id": org.id,
                "persona_id": id_,
                "channel": ["TEXT", "EMAIL", "VOICE_DROP", "LOYALTY"][n % 4],
                "status": "OPTED_IN",
                "source": "IMPORT",
                "updated_at": now,
            }
        )
        rollup_rows.append({"org_id": org.id, "persona_id": id_, "orders_count": n % 30})
    tables = SQLModel.metadata.tables
    async with db.session() as session, session.begin():
        for table, rows in (
            ("personas", persona_rows),
            ("identity_keys", key_rows),
            ("persona_tags", tag_rows),
            ("custom_attributes", attribute_rows),
            ("consents", consent_rows),
            ("persona_rollups", [{**EMPTY_ROLLUP, **r} for r in rollup_rows]),
            (
                "stores",
                [{"org_id": org.id, "id": new_id(), "name": f"Store {n}", "created_at": now} for n in range(200)],
            ),
        ):
            await session.execute(insert(tables[table]), rows)
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
        else:
            # VACUUM also moves the new rows out of the GIN index's pending list, as autovacuum would.
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))


EMPTY_ROLLUP: dict[str, int | None] = {
    c.name: None if c.name.endswith("_at") else 0
    for c in SQLModel.metadata.tables["persona_rollups"].columns
    if c.name not in ("org_id", "persona_id")
}


async def _plan(db: Database, query: str) -> str:
    async with db.read() as conn:
        org_id = (await conn.execute(select(PERSONAS.c.org_id).limit(1))).scalar_one()
        search = compile_search(parse_search(query), org_id, Dialect.of(conn))
        stmt = select(PERSONAS.c.id).where(*search.conditions)
        sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if db.is_sqlite:
            rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)).all()
            return "\n".join(str(r[-1]) for r in rows)
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(r[0] for r in (await conn.exec_driver_sql("EXPLAIN " + sql)).all())


# What each search form must read on PostgreSQL (enable_seqscan off, statistics fresh).
POSTGRESQL_INDEXES = [
    ("person1234@example.com", "identity_keys_pkey"),
    ("(415) 200-1234", "identity_keys_pkey"),
    ("nakamura", "ix_personas_name_trgm"),
    ("ann12", "ix_personas_name_trgm"),
    ('"Ann12 Lee"', "ix_personas_full_name"),
    ("tag:tag7", "ix_persona_tags_tag"),
    ("attr:tier=t3", "ix_custom_attributes_key_value"),
    ("opted_in:VOICE_DROP", "ix_consents_channel_status"),
    ('store:"Store 7"', "ix_stores_name"),
    ("orders>=29", "ix_persona_rollups_orders"),
]
SQLITE_INDEXES = [
    (
        "person1234@example.com",
        "SEARCH identity_keys USING INDEX sqlite_autoindex_identity_keys_1 (org_id=? AND kind=? AND value=?)",
    ),
    (
        "(415) 200-1234",
        "SEARCH identity_keys USING INDEX sqlite_autoindex_identity_keys_1 (org_id=? AND kind=? AND value=?)",
    ),
    ('"Ann12 Lee"', "ix_personas_first_name"),
    ("tag:tag7", "ix_persona_tags_tag"),
    ("attr:tier=t3", "ix_custom_attributes_key_value"),
    ("opted_in:VOICE_DROP", "ix_consents_channel_status"),
    ('store:"Store 7"', "ix_stores_name"),
]


@pytest.mark.usefixtures("crowd")
async def test_each_search_form_reads_its_index(db: Database) -> None:
    # Given a crowd of personas with fresh planner statistics
    for query, index in SQLITE_INDEXES if db.is_sqlite else POSTGRESQL_INDEXES:
        # When the search is planned, then it reads its index
        plan = await _plan(db, query)
        assert index in plan, (query, plan)
        if not db.is_sqlite:
            assert "Seq Scan" not in plan, (query, plan)
    # And exact phone and email search never scan a table on SQLite either
    for query in ("person1234@example.com", "(415) 200-1234"):
        plan = await _plan(db, query)
        assert "SCAN" not in plan if db.is_sqlite else "Seq Scan" not in plan, (query, plan)
