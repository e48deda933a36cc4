"""Ingestion throughput through the GraphQL mutations: contacts/s and orders/s.

    .venv/bin/python -m bench.ingest_throughput [--contacts N] [--orders N] [--batch 500] [--clients N]

Starts a throwaway PostgreSQL (tests/pgcluster.py), migrates it, and sends
ingestContacts / recordOrders batches through the ASGI app with an OPERATOR
key, as an integration would. Prints rows per second for: new contacts, known
contacts (a replay of the same rows), orders of known customers (loyalty
members: accrual, rollups and purchase counts), and replayed orders
(DUPLICATE).

With --clients N, N senders post batches at once (one round = N batches, the
server process the same one: an integration partner sending in parallel).
Rows per second are over the wall time of the rounds only; the tables are
analyzed before each round (--no-analyze to see them planned as empty).

--gc-freeze moves the objects of the started app out of the garbage
collector's generations first (gc.freeze), as a server can once at start-up.

Beside the wall rate, each line gives the CPU time per row: this process's
(the client and the app, GC included) plus the PostgreSQL cluster's (every
process of it, from /proc/<pid>/schedstat), and the round trips per batch (a statement
sent alone, or a pipeline of them: resolvers/upsert.py Writes).
On a machine other jobs load, the CPU figures are what the rows cost; the
wall rate is what they cost plus the wait for a core.

--fast-mutations on|off puts schema.fast_mutations.FastMutations into the schema's
extensions (before FastExecution) or takes it out, for the run; --revision REV
migrates to an earlier schema (e.g. 0003, before the implied organization keys
were dropped); --pg-stats restarts the cluster with pg_stat_statements
(track = all) and prints the server's time per row of each statement after
each phase; --profile DIR writes a profile of each phase's requests
(pyinstrument if installed, else cProfile). The client encodes and decodes its
JSON with orjson: a client of its own process would not cost this one.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import event, text

from app import create_app
from bench.operations import INGEST_CONTACTS, RECORD_ORDERS, contact, order
from cli import migrate
from database import Database
from engines import create_engine
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.organizations import create_organization
from resolvers.upsert import Writes
from settings import Settings
from tests.pgcluster import started_cluster


class ClusterCpu:
    """CPU time (s) of every process of one PostgreSQL cluster: the postmaster and its children."""

    def __init__(self, data: Path) -> None:
        self.postmaster = int((data / "postmaster.pid").read_text().split()[0])

    def pids(self) -> list[int]:
        found = [self.postmaster]
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(entry.path, "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.postmaster:
                    found.append(int(entry.name))
        return found

    def seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
            except OSError:
                continue  # ended meanwhile: its time is lost to both readings
        return total / 1e9


class Profiler:
    """cProfile (DIR/<phase>.prof, deterministic: it inflates code of many small calls) and, when
    installed, pyinstrument (DIR/<phase>.txt, sampling: closer to where the time really goes)."""

    def __init__(self, directory: Path, label: str) -> None:
        self.path = directory / label.replace(" ", "").replace("(", "-").rstrip(")")
        self.sampling: Any = None
        try:
            import pyinstrument

            self.sampling = pyinstrument.Profiler(interval=0.0005, async_mode="disabled")
            self.deterministic: cProfile.Profile | None = None
        except ImportError:
            self.deterministic = cProfile.Profile()

    def start(self) -> None:
        if self.sampling is not None:
            self.sampling.start()
        if self.deterministic is not None:
            self.deterministic.enable()

    def stop(self) -> None:
        if self.deterministic is not None:
            self.deterministic.disable()
        if self.sampling is not None:
            self.sampling.stop()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.deterministic is not None:
            self.deterministic.dump_stats(self.path.with_suffix(".prof"))
        if self.sampling is not None:
            text = self.sampling.output_text(unicode=False, color=False, show_all=False)
            self.path.with_suffix(".txt").write_text(text)
            self.sampling.last_session.save(str(self.path.with_suffix(".pyisession")))


@dataclass
class Tally:
    wall: float = 0.0
    process: float = 0.0
    server: float = 0.0
    statements: int = 0
    batches: int = 0


class Meter:
    """Wall time, this process's CPU, the cluster's CPU and the round trips, around a block."""

    def __init__(self, cluster: ClusterCpu | None, db: Database) -> None:
        self.cluster = cluster
        self.statements = 0

        def count(*_: Any) -> None:
            self.statements += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        sent = Writes._send

        async def pipeline(writes: Writes, statements: list[tuple[str, dict[str, Any] | None]]) -> None:
            count()  # one round trip, past SQLAlchemy's events
            await sent(writes, statements)

        Writes._send = pipeline  # type: ignore[method-assign,assignment]

    @contextmanager
    def measure(self, tally: Tally) -> Iterator[None]:
        wall, process = time.perf_counter(), time.process_time()
        server = self.cluster.seconds() if self.cluster else 0.0
        statements = self.statements
        yield
        tally.wall += time.perf_counter() - wall
        tally.process += time.process_time() - process
        tally.server += (self.cluster.seconds() if self.cluster else 0.0) - server
        tally.statements += self.statements - statements


async def send(http: httpx.AsyncClient, document: str, field: str, rows_key: str, rows: list[dict[str, Any]]) -> None:
    variables = {"input": {rows_key: rows} | ({"source": "bench-pos"} if field == "ingestContacts" else {})}
    # orjson, as a client in a process of its own would not cost this process: the stdlib's json
    # (httpx's json=) took ~25 us of this process's CPU per row, counted as the app's.
    response = await http.post(
        "/graphql",
        content=orjson.dumps({"query": document, "variables": variables}),
        headers={"Content-Type": "application/json"},
    )
    body = orjson.loads(response.content)
    assert response.status_code == 200, response.text[:500]
    assert not body.get("errors"), body["errors"][:3]
    bad = [r for r in body["data"][field]["results"] if r["userErrors"]]
    assert not bad, bad[:3]


async def statement_times(db: Database, rows: int, top: int = 14) -> None:
    """The server's time per row of the phase's statements (pg_stat_statements, track = all: the
    foreign-key checks show as statements of their own), then the counters reset."""
    async with db.engine.begin() as conn:
        found = await conn.execute(
            text(
                "SELECT calls, rows, total_exec_time, regexp_replace(left(query, 110), '\\s+', ' ', 'g')"
                " FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%' AND query <> 'ANALYZE'"
                " ORDER BY total_exec_time DESC"
            )
        )
        measured = found.all()
        total = sum(r[2] for r in measured)
        print(f"    PostgreSQL execution {total * 1000 / rows:.0f} us/row in all:")
        for calls, returned, ms, query in measured[:top]:
            print(f"    {ms * 1000 / rows:6.1f} us/row {calls:6d} calls {returned:7d} rows  {query}")
        await conn.execute(text("SELECT pg_stat_statements_reset()"))


def report(label: str, rows: int, tally: Tally) -> None:
    cpu = tally.process + tally.server
    print(
        f"{label:<20} {rows / tally.wall:7.0f} rows/s wall | CPU/row {cpu * 1000 / rows:.3f} ms"
        f" (app {tally.process * 1000 / rows:.3f} + pg {tally.server * 1000 / rows:.3f}) = {rows / cpu:6.0f} rows/CPU-s"
        f" | {tally.statements / max(tally.batches, 1):.1f} round trips/batch",
        flush=True,
    )


async def measure(
    settings: Settings,
    cluster: ClusterCpu | None,
    n_contacts: int,
    n_orders: int,
    batch: int,
    *,
    clients: int = 1,
    analyze_between: bool = True,
    gc_freeze: bool = False,
    profile: Path | None = None,
    pg_stats: bool = False,
) -> None:
    db = Database(create_engine(settings))
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug=f"bench-{random.randint(0, 10**6)}", name="Bench")
        org.points_per_order = 5
        key = await issue_key(session, org_id=org.id, role=Role.OPERATOR, name="bench")
    app = create_app(settings, database=db)
    headers = {"Authorization": f"Bearer {key.plaintext}"}
    rng = random.Random(7)
    meter = Meter(cluster, db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers, timeout=600
    ) as http:
        # Warm-up: parse caches, connection pool (one connection per client), statement caches.
        await asyncio.gather(
            *(
                send(
                    http,
                    INGEST_CONTACTS,
                    "ingestContacts",
                    "contacts",
                    [contact(10**6 + 20 * c + i) for i in range(20)],
                )
                for c in range(clients)
            )
        )
        await send(
            http,
            RECORD_ORDERS,
            "recordOrders",
            "orders",
            [order(10**6 + n, 10**6 + n, rng, "warm-up") for n in range(20)],
        )
        if gc_freeze:
            # What a server would do once started (proposed for app.py's lifespan, which httpx's ASGI
            # transport does not run): the start-up objects leave the collector's generations, so a
            # full collection walks the batch's objects only, not the ~190k of the loaded app.
            gc.collect()
            gc.freeze()

        if pg_stats:
            async with db.engine.begin() as conn:
                await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
                await conn.execute(text("SELECT pg_stat_statements_reset()"))

        async def analyze() -> None:
            # Statistics, as autovacuum keeps them on a live database: the tables start empty here,
            # and the foreign-key checks and the identity look-up planned against empty tables
            # scan them (the cost of a batch then grows with the rows the batches before it wrote).
            if analyze_between:
                async with db.engine.begin() as conn:
                    await conn.execute(text("ANALYZE"))

        async def phase(label: str, document: str, field: str, rows_key: str, batches: list[list[Any]]) -> None:
            tally = Tally(batches=len(batches))
            profiler = Profiler(profile, label) if profile is not None else None
            for start in range(0, len(batches), clients):
                await analyze()
                with meter.measure(tally):
                    if profiler is not None:
                        profiler.start()
                    await asyncio.gather(
                        *(send(http, document, field, rows_key, rows) for rows in batches[start : start + clients])
                    )
                    if profiler is not None:
                        profiler.stop()
            report(label, sum(len(rows) for rows in batches), tally)
            if pg_stats:
                await statement_times(db, sum(len(rows) for rows in batches))
            if profiler is not None:
                profiler.save()

        def batches_of(rows: list[Any]) -> list[list[Any]]:
            return [rows[start : start + batch] for start in range(0, len(rows), batch)]

        make: Callable[[int], dict[str, Any]] = contact
        contacts = [make(i) for i in range(n_contacts)]
        await phase("contacts (new)", INGEST_CONTACTS, "ingestContacts", "contacts", batches_of(contacts))
        await phase("contacts (known)", INGEST_CONTACTS, "ingestContacts", "contacts", batches_of(contacts))
        all_orders = [order(n, rng.randrange(n_contacts), rng, "throughput") for n in range(n_orders)]
        await phase("orders (new)", RECORD_ORDERS, "recordOrders", "orders", batches_of(all_orders))
        await phase("orders (replayed)", RECORD_ORDERS, "recordOrders", "orders", batches_of(all_orders))
    await db.dispose()


def use_fast_mutations(choice: str) -> None:
    """Put FastMutations in the schema's extensions (just before FastExecution) or take it out."""
    if choice == "as-is":
        return
    from schema import schema
    from schema.fast_exec import FastExecution
    from schema.fast_mutations import FastMutations

    others = [e for e in schema.extensions if e is not FastMutations]
    if choice == "on":
        others.insert(others.index(FastExecution), FastMutations)
    schema.extensions = tuple(others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=1, help="batches sent at once (default 1)")
    parser.add_argument(
        "--no-analyze", action="store_true", help="no ANALYZE before each round (statistics of the empty tables)"
    )
    parser.add_argument("--gc-freeze", action="store_true", help="gc.collect(); gc.freeze() after the warm-up")
    parser.add_argument(
        "--fast-mutations",
        choices=("on", "off", "as-is"),
        default="as-is",
        help="schema.fast_mutations.FastMutations in the schema's extensions (on), out of them (off), or as the schema"
        " has it (default)",
    )
    parser.add_argument(
        "--revision", default="head", help="migrate to this revision (default head): the schema before a migration"
    )
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="PostgreSQL restarted with pg_stat_statements (track = all): server time per statement and phase",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="cProfile each phase's requests into DIR/<phase>.prof"
    )
    args = parser.parse_args()
    use_fast_mutations(args.fast_mutations)
    with started_cluster() as pg:
        # The batch, not the 10 s request limit, is what is measured.
        if args.pg_stats:
            with (pg.data / "postgresql.conf").open("a") as conf:
                conf.write("shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n")
            pg.stop()
            pg.start()
        settings = Settings(database_url=pg.url, request_timeout_seconds=600)
        migrate(settings, args.revision)
        print(
            f"fast mutations {args.fast_mutations},"
            f" batches of {args.batch}, {args.clients} client(s), gc.freeze {'on' if args.gc_freeze else 'off'},"
            f" load average {os.getloadavg()[0]:.1f}"
        )
        asyncio.run(
            measure(
                settings,
                ClusterCpu(pg.data),
                args.contacts,
                args.orders,
                args.batch,
                clients=args.clients,
                analyze_between=not args.no_analyze,
                gc_freeze=args.gc_freeze,
                profile=args.profile,
                pg_stats=args.pg_stats,
            )
        )
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
