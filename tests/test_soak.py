"""A bounded soak: a few thousand requests from concurrent clients against a
live uvicorn on the loopback, reads and writes mixed. Every answer is a
clean 200, the points written add up, and no database connection leaks."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from database import Database
from models import Organization
from permissions.matrix import Role
from settings import Settings
from tests.factories import make_persona
from tests.hardening import key_for, live_server

# Per backend (so twice this in all), bounded for `make test`; PERSONAGRAPH_SOAK_REQUESTS=5000 for a longer soak.
REQUESTS = int(os.environ.get("PERSONAGRAPH_SOAK_REQUESTS", "600"))
CLIENTS = 16
OPERATIONS = Path(__file__).resolve().parent.parent / "operations"
HEADER_HASH = hashlib.sha256((OPERATIONS / "header.graphql").read_text().encode()).hexdigest()
VIEWER = "{ viewer { name role } }"
PAGE = "{ personas(first: 10) { totalCount nodes { id number fullName } } }"
POINTS = "query($id: ID!) { persona(id: $id) { rewardPoints history { points(first: 5) { totalCount } } } }"
ADJUST = """
mutation($input: AdjustPointsInput!) {
  adjustPoints(input: $input) { persona { rewardPoints } userErrors { code message } }
}
"""


def _sqlite_handles(settings: Settings) -> int:
    """Open file handles of this process on the SQLite database file."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return 0
    target = os.path.realpath(url.database)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:
            continue
    return count


async def test_a_soak_of_concurrent_clients_ends_without_errors_or_leaked_connections(
    db: Database, settings: Settings, org: Organization
) -> None:
    # Given a persona, a manager's and a staff member's key, and a live server
    persona = await make_persona(db, org, email="soak@example.com")
    keys = [await key_for(db, org, Role.MANAGER), await key_for(db, org, Role.STAFF)]
    handles_before = _sqlite_handles(settings)
    requests: list[dict[str, Any]] = [
        {"query": VIEWER},
        {"query": PAGE},
        {"query": POINTS, "variables": {"id": persona.gid}},
        {"variables": {"id": persona.gid}, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": HEADER_HASH}}},
        {"query": ADJUST, "variables": {"input": {"personaId": persona.gid, "delta": 1, "note": "soak"}}},
    ]
    plan = list(itertools.islice(itertools.cycle(range(len(requests))), REQUESTS))
    failures: list[str] = []
    adjusted = 0

    with live_server(settings) as live:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=live.url, limits=limits, timeout=30) as http:
            queue = iter(enumerate(plan))

            async def client() -> None:
                nonlocal adjusted
                for n, which in queue:
                    key = keys[n % len(keys)] if which != 4 else keys[0]  # only the manager adjusts
                    response = await http.post(
                        "/graphql", json=requests[which], headers={"Authorization": f"Bearer {key}"}
                    )
                    body = response.json()
                    if response.status_code != 200 or body.get("errors"):
                        failures.append(f"{response.status_code} {body}")
                    elif which == 4:
                        if body["data"]["adjustPoints"]["userErrors"]:
                            failures.append(str(body))
                        else:
                            adjusted += 1

            # When the clients send their requests at once
            await asyncio.gather(*(client() for _ in range(CLIENTS)))
            final = await http.post("/graphql", json=requests[2], headers={"Authorization": f"Bearer {keys[0]}"})

        # Then every answer was a clean 200, and the points add up
        assert failures == [], failures[:5]
        assert adjusted == REQUESTS // len(requests)
        assert final.json()["data"]["persona"]["rewardPoints"] == adjusted
        # And no connection was left checked out or idle in a transaction
        engine = live.app.state.db.engine
        if not db.is_sqlite:
            assert engine.pool.checkedout() == 0
            async with db.session() as session:
                stuck = await session.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state LIKE 'idle in transaction%'"
                    )
                )
                assert stuck.scalar_one() == 0
                opened = await session.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                )
                assert opened.scalar_one() <= 2 * settings.db_pool_size + 5
    assert _sqlite_handles(settings) == handles_before
