"""App variants for measuring a proposed change before anyone makes it.

    .venv/bin/python -m bench --app-factory bench.experiments:lean_reads --app-env DB_POOL_SIZE=40

`lean_reads`: the app exactly as `app:create_app` builds it, except that the
read-only connections (`Database.read()`, used by every loader batch and every
history page and count) run in autocommit on PostgreSQL, so no BEGIN and no
ROLLBACK, and the pool does not ping a connection before handing it out.
That is the change proposed to database.py in bench/README.md; this module
only patches it in the benchmark's server process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from starlette.applications import Starlette

import database
from app import create_app
from settings import get_settings


@asynccontextmanager
async def _autocommit_read(self: database.Database) -> AsyncIterator[AsyncConnection]:
    async with self.engine.connect() as raw:
        yield await raw.execution_options(isolation_level="AUTOCOMMIT", **{database.READ_ONLY: True})


def lean_reads() -> Starlette:
    settings = get_settings()
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
    )
    db = database.Database(engine)
    if not db.is_sqlite:
        database.Database.read = _autocommit_read  # type: ignore[method-assign]
    return create_app(settings, database=db)
