"""A bounded soak: a few thousand requests from concurrent clients against a
live uvicorn on the loopback, reads and writes mixed. Every answer is a
clean 200, the points written add up, and no database connection leaks.

The clients are lean on purpose: each holds one keep-alive connection and
sends requests prepared as bytes once, so the test's time goes to the server
(which shares this process), and most requests are the cheap ones a busy API
sees most, with card reads and writes mixed in."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from database import Database
from models import Organization
from permissions.matrix import Role
from settings import Settings
from tests.factories import make_persona
from tests.hardening import key_for, live_server

# Per backend (so twice this in all), bounded for `make test`; PERSONAGRAPH_SOAK_REQUESTS=5000 for a longer soak.
REQUESTS = int(os.environ.get("PERSONAGRAPH_SOAK_REQUESTS", "2000"))
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
# One round of the mix: half of it the cheapest request, a tenth of it writes.
MIX = ("viewer", "header", "viewer", "page", "viewer", "points", "viewer", "adjust", "header", "viewer")


class KeepAlive:
    """One HTTP/1.1 connection reused for every request of a client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> KeepAlive:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, request: bytes) -> tuple[int, Any]:
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = next(int(line[15:]) for line in head.split("\r\n") if line.startswith("content-length:"))
        return int(head.split(" ", 2)[1]), json.loads(await self.reader.readexactly(length))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def graphql_post(body: dict[str, Any], key: str) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


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
    bodies: dict[str, dict[str, Any]] = {
        "viewer": {"query": VIEWER},
        "page": {"query": PAGE},
        "points": {"query": POINTS, "variables": {"id": persona.gid}},
        "header": {
            "variables": {"id": persona.gid},
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": HEADER_HASH}},
        },
        "adjust": {"query": ADJUST, "variables": {"input": {"personaId": persona.gid, "delta": 1, "note": "soak"}}},
    }
    # Reads alternate between the two keys; only the manager adjusts points.
    prepared = {
        (name, key): graphql_post(body, key) for name, body in bodies.items() for key in keys if name != "adjust"
    }
    prepared["adjust", keys[0]] = graphql_post(bodies["adjust"], keys[0])
    plan = [
        (name, keys[0] if name == "adjust" else keys[(n + n // len(MIX)) % len(keys)])
        for n, name in enumerate(itertools.islice(itertools.cycle(MIX), REQUESTS))
    ]
    failures: list[str] = []
    adjusted = 0

    with live_server(settings) as live:
        queue = iter(plan)

        async def client() -> None:
            nonlocal adjusted
            connection = await KeepAlive.open(live.url)
            try:
                for name, key in queue:
                    status, body = await connection.send(prepared[name, key])
                    if status != 200 or body.get("errors"):
                        failures.append(f"{name}: {status} {body}")
                    elif name == "adjust":
                        if body["data"]["adjustPoints"]["userErrors"]:
                            failures.append(str(body))
                        else:
                            adjusted += 1
            finally:
                await connection.close()

        # When the clients send their requests at once, each on its own keep-alive connection
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        final_connection = await KeepAlive.open(live.url)
        _, final = await final_connection.send(prepared["points", keys[0]])
        await final_connection.close()

        # Then every answer was a clean 200, and the points add up
        assert failures == [], failures[:5]
        assert adjusted == plan.count(("adjust", keys[0])) > 0
        assert final["data"]["persona"]["rewardPoints"] == adjusted
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
