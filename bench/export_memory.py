"""CSV export: rows per second and peak memory for 10k rows and for all of them.

    python -m bench.export_memory [--rows 100000] [--no-trace] [--reuse]
    PERSONAGRAPH_BENCH_DATABASE_URL=postgresql://... python -m bench.export_memory --rows 1000000 --reuse

Fills a PostgreSQL organization (an existing server from
PERSONAGRAPH_BENCH_DATABASE_URL, else a throwaway cluster built like the
tests') with personas, rollups, tags and consents, then streams
/export/personas.csv through the ASGI app with a receiver that counts and
drops the bytes, as a client on the network would. Memory is the peak that
Python allocated while streaming (tracemalloc, reset before each run) and
the growth of the process's resident set. Flat memory means the large export
peaks where the 10k one does. `app CPU` is this process's CPU time per row
(the app's share of the work; the database's is on the server), which moves
less with the machine's load than rows/s does. --reuse exports an
organization an earlier run on the same server filled with --rows personas
(filling 1M rows takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from app import create_app
from cli import migrate
from database import Database
from engines import create_engine
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.organizations import create_organization
from settings import Settings
from tests.pgcluster import running_postgres

ENV_URL = "PERSONAGRAPH_BENCH_DATABASE_URL"
FIRST_TEN_THOUSAND = "tag:first10k"


@contextlib.contextmanager
def database_url() -> Iterator[str]:
    if url := os.environ.get(ENV_URL):
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)
        return
    with running_postgres() as url:
        yield url


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def fill(db: Database, rows: int) -> tuple[str, str]:
    """A fresh organization with `rows` personas; returns (org id, an OWNER key)."""
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug=f"bench-export-{int(time.time())}", name="Export bench")
        key = await issue_key(session, org_id=org.id, role=Role.OWNER, name="bench")
    fills = [
        """INSERT INTO personas (org_id, id, number, first_name, last_name, email, phone, source_kind, source_name,
               loyalty_member, loyalty_signup_at, created_at, updated_at)
           SELECT :org, gen_random_uuid(), g, 'First' || g, 'Last' || (g % 977), 'p' || g || '@example.com',
               '+1415' || lpad((2000000 + g)::text, 7, '0'), 'INTEGRATION', 'pos', g % 2 = 0,
               CASE WHEN g % 2 = 0 THEN now() - g * interval '1 minute' END,
               now() - g * interval '1 second', now()
           FROM generate_series(1, :rows) AS g""",
        """INSERT INTO persona_rollups (org_id, persona_id, points_balance, orders_count, items_count,
               spend_total_cents, spend_subtotal_cents, spend_member_subtotal_cents, last_order_at,
               points_order, points_visit, points_referral_sale, points_redemption, points_staff_adjustment,
               points_audience_boost, points_campaign_gift, points_flow_gift, points_collectible,
               points_legacy_import, points_expiration)
           SELECT org_id, id, number % 900, number % 12, number % 30, number * 7, number * 6, number * 5,
               now() - (number % 400) * interval '1 day', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
           FROM personas WHERE org_id = :org""",
        """INSERT INTO persona_tags (org_id, persona_id, tag, created_at)
           SELECT org_id, id, CASE WHEN number <= 10000 THEN 'first10k' ELSE 'rest' END, now()
           FROM personas WHERE org_id = :org""",
        """INSERT INTO consents (org_id, persona_id, channel, status, source, updated_at)
           SELECT org_id, id, c.channel, 'OPTED_IN', 'IMPORT', now()
           FROM personas, (VALUES ('TEXT'), ('EMAIL')) AS c(channel) WHERE org_id = :org""",
    ]
    async with db.engine.begin() as conn:
        for statement in fills:
            await conn.execute(text(statement), {"org": org.id, "rows": rows})
    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))
    return str(org.id), key.plaintext


@dataclass
class Run:
    label: str
    rows: int
    seconds: float
    cpu_seconds: float
    megabytes: float
    peak_traced_mib: float
    rss_growth_mib: float


async def export(app: Any, key: str, query: str | None, label: str) -> Run:
    """Stream one export through the ASGI app, dropping each chunk as a network client would."""
    path_query = f"query={query}".encode() if query else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/export/personas.csv",
        "raw_path": b"/export/personas.csv",
        "query_string": path_query,
        "headers": [(b"authorization", f"Bearer {key}".encode()), (b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    received = {"bytes": 0, "lines": 0, "status": 0, "rss": rss_kib()}
    start_rss = received["rss"]

    requested = False
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        # The request once, then nothing until the response has been read (as over a socket).
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            received["status"] = message["status"]
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            received["bytes"] += len(body)
            received["lines"] += body.count(b"\r\n")
            received["rss"] = max(received["rss"], rss_kib())
            if not message.get("more_body", False):
                done.set()

    tracemalloc.reset_peak()
    started, cpu_started = time.perf_counter(), time.process_time()
    await app(scope, receive, send)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    _, peak = tracemalloc.get_traced_memory()
    assert received["status"] == 200, received
    return Run(
        label=label,
        rows=received["lines"] - 1,
        seconds=elapsed,
        cpu_seconds=cpu,
        megabytes=received["bytes"] / 2**20,
        peak_traced_mib=peak / 2**20,
        rss_growth_mib=(received["rss"] - start_rss) / 1024,
    )


async def filled(db: Database, rows: int) -> str | None:
    """An OWNER key for an organization an earlier run filled with `rows` personas, if there is one."""
    async with db.session() as session, session.begin():
        found = await session.execute(
            text(
                "SELECT o.id FROM organizations o JOIN personas p ON p.org_id = o.id "
                "WHERE o.slug LIKE 'bench-export-%' GROUP BY o.id HAVING count(*) = :rows LIMIT 1"
            ),
            {"rows": rows},
        )
        org_id = found.scalar_one_or_none()
        if org_id is None:
            return None
        key = await issue_key(session, org_id=org_id, role=Role.OWNER, name="bench")
    return key.plaintext


async def main_async(rows: int, *, trace: bool = True, reuse: bool = False) -> list[Run]:
    with database_url() as url:
        settings = Settings(database_url=url)
        migrate(settings)
        db = Database(create_engine(settings))
        try:
            key = await filled(db, rows) if reuse else None
            if key is None:
                _, key = await fill(db, rows)
            app = create_app(settings, database=db)
            await export(app, key, FIRST_TEN_THOUSAND, "warm-up")
            if trace:
                tracemalloc.start()
            runs = [
                await export(app, key, FIRST_TEN_THOUSAND, "10k rows"),
                await export(app, key, None, f"{rows // 1000}k rows"),
            ]
            if trace:
                tracemalloc.stop()
            return runs
        finally:
            await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-trace", action="store_true", help="time without tracemalloc (its overhead skews rows/s)")
    parser.add_argument(
        "--reuse", action="store_true", help="export an organization an earlier run filled with --rows (kept servers)"
    )
    args = parser.parse_args()
    runs = asyncio.run(main_async(args.rows, trace=not args.no_trace, reuse=args.reuse))
    header = f"{'export':<12}{'rows':>9}{'seconds':>9}{'rows/s':>9}{'app CPU us/row':>16}{'MiB out':>9}"
    print(f"{header}{'peak MiB':>10}{'RSS +MiB':>10}")
    for r in runs:
        print(
            f"{r.label:<12}{r.rows:>9}{r.seconds:>9.2f}{r.rows / r.seconds:>9.0f}{r.cpu_seconds * 1e6 / r.rows:>16.1f}"
            f"{r.megabytes:>9.1f}{r.peak_traced_mib:>10.2f}{r.rss_growth_mib:>10.1f}"
        )


if __name__ == "__main__":
    main()
