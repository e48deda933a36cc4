"""Migrations go up from empty and down to empty on both databases, and the
migrated schema keeps the tenant rules that Citus needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url

from cli import downgrade, migrate
from engines import sync_url
from settings import Settings

NOT_TENANT = {"organizations", "alembic_version"}


@pytest.fixture
def scratch_url(backend: str, settings: Settings, tmp_path: object) -> Iterator[str]:
    """A database of its own, so going down to empty leaves the shared one alone."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/scratch.sqlite3"
        return
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sync_url(settings.database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_migrations_upgrade_from_empty_and_downgrade_to_empty(scratch_url: str) -> None:
    settings = Settings(database_url=scratch_url)
    engine = create_engine(sync_url(scratch_url))
    try:
        migrate(settings)
        assert {"personas", "points_entries", "orders", "merges", "audit_log"} <= _tables(engine)
        downgrade(settings)
        assert _tables(engine) == set()
        migrate(settings)
        assert "personas" in _tables(engine)
    finally:
        engine.dispose()


def test_every_tenant_table_leads_its_keys_with_org_id(settings: Settings) -> None:
    engine = create_engine(sync_url(settings.database_url))
    try:
        inspector = inspect(engine)
        tables = _tables(engine) - NOT_TENANT
        assert len(tables) > 20
        for table in sorted(tables):
            pk = inspector.get_pk_constraint(table)["constrained_columns"]
            assert pk[0] == "org_id", f"{table}: primary key {pk} does not start with org_id"
            for unique in inspector.get_unique_constraints(table):
                assert unique["column_names"][0] == "org_id", f"{table}: unique {unique['column_names']}"
            for index in inspector.get_indexes(table):
                if index["unique"]:
                    assert index["column_names"][0] == "org_id", f"{table}: unique index {index['name']}"
            for fk in inspector.get_foreign_keys(table):
                if fk["referred_table"] in NOT_TENANT:
                    continue
                assert fk["constrained_columns"][0] == "org_id", f"{table}: foreign key {fk['constrained_columns']}"
                assert fk["referred_columns"][0] == "org_id", f"{table}: foreign key to {fk['referred_table']}"
    finally:
        engine.dispose()
