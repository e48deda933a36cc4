"""App variants, for measuring a change against the app as it is, in the same run.

    .venv/bin/python -m bench --only card --app-factory bench.experiments:read_per_batch

`read_per_batch`: the app exactly as `app:create_app` builds it, except that a
request's reads do not share a connection (database.RequestDatabase): every
loader batch, history page and count checks a connection out of the pool
(with its liveness ping) and runs in its own transaction (BEGIN ... ROLLBACK),
as the app did before 2026-11-25. It shows what sharing one autocommit
connection per request is worth.
"""

from __future__ import annotations

from starlette.applications import Starlette

import database
import engines
from app import create_app
from settings import get_settings


class _ReadPerBatch(database.RequestDatabase):
    read = database.Database.read  # a pooled connection and a transaction per read

    async def close(self) -> None:
        return None


def _read_per_batch(self: database.Database) -> database.RequestDatabase:
    return _ReadPerBatch(self)


def read_per_batch() -> Starlette:
    settings = get_settings()
    db = database.Database(engines.create_engine(settings))
    database.Database.for_request = _read_per_batch  # type: ignore[method-assign]
    return create_app(settings, database=db)
