"""Building test data through the same write paths the API uses."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from cli import migrate
from database import Database
from models import Organization, Persona
from resolvers.ingest import ContactData, IngestOutcome, ingest_one
from schema.ids import to_global_id
from settings import Settings

# Children first, so DELETE never trips a foreign key.
TABLES = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]


async def empty_tables(db: Database) -> None:
    """Every table emptied."""
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            for table in TABLES:
                await conn.execute(text(f'DELETE FROM "{table}"'))
        else:
            await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in TABLES) + " CASCADE"))


@contextlib.contextmanager
def own_postgres_database(postgres_url: str, prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own on the tests' cluster, migrated (its URL); dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(postgres_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    migrate(Settings(database_url=url))
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class MadePersona:
    id: uuid.UUID
    number: int
    gid: str
    row: Persona


async def make_persona(db: Any, org: Organization, source: str = "test-pos", **fields: Any) -> MadePersona:
    """A persona made by ingesting one contact; fails the test if it is rejected."""
    assert isinstance(db, Database)
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        result = await ingest_one(session, loaded, source, ContactData(**fields), actor="test", path=["contact"])
    assert result.outcome is not IngestOutcome.REJECTED, [e.message for e in result.errors]
    assert result.persona is not None
    p = result.persona
    return MadePersona(id=p.id, number=p.number, gid=to_global_id("Persona", p.id), row=p)


def days_ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
