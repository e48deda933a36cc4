"""The benchmark harness: `make bench` (= .venv/bin/python -m bench).

    .venv/bin/python -m bench [--scale tiny|small|large] [--keep-db DIR] [--quick] [--no-peer]
                              [--only NAME ...] [--requests N] [--seconds S]

1. PostgreSQL: $PERSONAGRAPH_BENCH_DATABASE_URL, a cluster kept in --keep-db, or a
   throwaway one started like the tests' (bench/cluster.py).
2. Data: bench/generate.py at the scale (reused when the organization exists).
3. Servers, each one process on loopback: the app (uvicorn), the floor
   (bench/floor.py, uvicorn) and the peer (PostGraphile v5 on Node, optional).
4. For each operation: median/p95/p99 at one client and requests/s at eight,
   on each server in turn, in the same run; the app's ratio to the floor and
   to the peer. Then the card against orders per persona, the write batches
   (rows/s), the CSV export (rows/s, peak RSS) and the CSV import (if present).
5. bench/results/<date>.json, .md and .png (bench/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
import psycopg

from bench import report, writes
from bench.client import Target, latency
from bench.cluster import bench_postgres, sqlalchemy_url
from bench.floor import install_helpers
from bench.generate import SCALES, generate
from bench.measure import Measured, Settings, answer, differences, figures, floor_request, graphql_request
from bench.operations import ReadOperation, read_operations
from bench.peer import PEER_CARD, peer_variables
from bench.servers import (
    Server,
    app_server,
    floor_server,
    install_peer,
    peer_available,
    peer_server,
    peer_version,
)

SIZES = (5, 50, 500, 5000)
SMART = "tag:vip points>=100"


@dataclass
class Sample:
    """What the run reads: personas to open, probes by size, what to type into the search."""

    org_id: uuid.UUID
    key: str
    personas: list[uuid.UUID]
    probes: dict[int, uuid.UUID]
    searches: dict[str, str]
    export_until: str
    export_small_rows: int


@dataclass
class Run:
    args: argparse.Namespace
    settings: Settings
    sample: Sample
    app: Target
    floor: Target
    peer: Target | None
    results: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def skip(self, message: str) -> None:
        print(f"  skipped: {message}")
        self.skipped.append(message)


def gid(type_name: str, id_: uuid.UUID) -> str:
    from schema.ids import to_global_id

    return to_global_id(type_name, id_)


async def issue_owner_key(url: str, org_id: uuid.UUID) -> str:
    from database import Database
    from engines import create_engine
    from permissions.keys import issue_key
    from permissions.matrix import Role
    from settings import Settings as AppSettings

    db = Database(create_engine(AppSettings(database_url=sqlalchemy_url(url))))
    try:
        async with db.session() as session, session.begin():
            issued = await issue_key(
                session, org_id=org_id, role=Role.OWNER, name=f"bench {dt.datetime.now(dt.UTC):%F %T}"
            )
        return issued.plaintext
    finally:
        await db.dispose()


# S608 below: statements assembled from these constants only; values go in as parameters.
LISTED = "org_id = %s AND merged_into_id IS NULL AND erased_at IS NULL AND archived_at IS NULL"
SAMPLE_PERSONAS = (
    "SELECT id, first_name, last_name, email, phone FROM personas WHERE "  # noqa: S608
    + LISTED
    + " AND coalesce(source_name, '') <> ALL(%s) ORDER BY md5(id::text) LIMIT 200"
)
PROBE = "SELECT persona_id FROM persona_rollups WHERE org_id = %s AND orders_count = %s ORDER BY persona_id LIMIT 1"
COUNT_LISTED = "SELECT count(*) FROM personas WHERE " + LISTED  # noqa: S608
NTH_SIGNUP = (
    "SELECT loyalty_signup_at FROM personas WHERE "  # noqa: S608
    + LISTED
    + " AND loyalty_signup_at IS NOT NULL"
    " ORDER BY loyalty_signup_at LIMIT 1 OFFSET %s"
)


def pick_sample(url: str, org_id: uuid.UUID, key: str, seed: int) -> Sample:
    rng = random.Random(seed)
    with psycopg.connect(url) as conn:
        rows = conn.execute(SAMPLE_PERSONAS, (org_id, list(writes.WRITE_SOURCES))).fetchall()
        probes = {}
        for size in SIZES:
            found = conn.execute(PROBE, (org_id, size)).fetchone()
            if found:
                probes[size] = found[0]
        total = conn.execute(COUNT_LISTED, (org_id,)).fetchone()
        if total is None or not rows:
            raise RuntimeError("the benchmark organization has no personas")
        nth = min(10_000, int(total[0]) // 2)
        until = conn.execute(NTH_SIGNUP, (org_id, nth)).fetchone()
    if until is None:
        raise RuntimeError("no loyalty sign-ups to cut the export at")
    with_phone = next(r for r in rows[1:] if r[4] and phonenumbers.is_valid_number(phonenumbers.parse(r[4])))
    with_email = next(r for r in rows[2:] if r[3])
    named = rows[3]
    searches = {
        "phone": phonenumbers.format_number(phonenumbers.parse(with_phone[4]), phonenumbers.PhoneNumberFormat.NATIONAL),
        "email": with_email[3],
        "quoted name": f'"{named[1]} {named[2]}"',
        "partial name": rng.choice(rows)[2][:4].lower(),
        "smart (2 conditions)": SMART,
    }
    day = until[0].date()
    return Sample(org_id, key, [r[0] for r in rows[:50]], probes, searches, day.isoformat(), nth)


# ------------------------------------------------------------------ reads


def _requests(
    run: Run, op: ReadOperation, personas: list[uuid.UUID]
) -> tuple[list[bytes], list[bytes], list[dict[str, Any]]]:
    variables = [{**op.variables, "id": gid("Persona", p)} for p in personas] if op.per_persona else [op.variables]
    app = [graphql_request(op.document, v, run.sample.key) for v in variables]
    floor = [floor_request(op.floor_path, v) for v in variables]
    return app, floor, variables


async def measure_read(run: Run, op: ReadOperation) -> Measured:
    print(f"- {op.name}", flush=True)
    result = Measured(op.name)
    app_reqs, floor_reqs, _ = _requests(run, op, run.sample.personas)
    first = await answer(run.app, app_reqs[0])
    if first.get("errors"):
        messages = "; ".join(e.get("message", "?") for e in first["errors"])[:300]
        result.note = f"the app answers with errors, not measured: {messages}"
        run.skip(f"{op.name}: {result.note}")
        return result
    result.parity = differences(first, await answer(run.floor, floor_reqs[0]))
    if result.parity:
        print(f"  parity: the floor differs from the app in {len(result.parity)} places, e.g. {result.parity[:3]}")
    result.app = await figures(run.app, app_reqs, run.settings)
    result.floor = await figures(run.floor, floor_reqs, run.settings)
    if run.peer is not None and op.name == "card":
        peer_reqs = [graphql_request(PEER_CARD, peer_variables(run.sample.org_id, p), "") for p in run.sample.personas]
        check = await answer(run.peer, peer_reqs[0])
        if check.get("errors"):
            run.skip(f"peer card query failed: {str(check['errors'])[:300]}")
        else:
            result.peer = await figures(run.peer, peer_reqs, run.settings)
    _print(result)
    return result


def _print(m: Measured) -> None:
    for name in ("app", "floor", "peer"):
        f = getattr(m, name)
        if f is not None:
            print(f"  {name:<5} p50 {f.p50_ms:7.2f} ms  p95 {f.p95_ms:7.2f}  p99 {f.p99_ms:7.2f}  {f.rps_8:7.1f} req/s")
    print(f"  ratios {m.ratios()}", flush=True)


async def card_by_size(run: Run) -> list[dict[str, Any]]:
    """The full card of personas with 5, 50, 500 and 5,000 orders: one client, each server."""
    from bench.operations import document

    print("- card by orders per persona", flush=True)
    doc, out = document("card"), []
    count = max(20, run.settings.requests // 2)
    for size, persona in sorted(run.sample.probes.items()):
        variables = {"id": gid("Persona", persona)}
        row: dict[str, Any] = {"orders": size}
        targets = {
            "app": (run.app, graphql_request(doc, variables, run.sample.key)),
            "floor": (run.floor, floor_request("/floor/card", variables)),
        }
        if run.peer is not None:
            targets["peer"] = (run.peer, graphql_request(PEER_CARD, peer_variables(run.sample.org_id, persona), ""))
        for name, (target, request) in targets.items():
            await latency(target, [request], 5)
            lat = await latency(target, [request], count)
            row[name] = {"p50_ms": lat.p50_ms, "p95_ms": lat.p95_ms, "p99_ms": lat.p99_ms}
        print(f"  {size:>5} orders: " + "  ".join(f"{k} {v['p50_ms']:.2f} ms" for k, v in row.items() if k != "orders"))
        out.append(row)
    return out


# ------------------------------------------------------------------ main


async def measure_all(run: Run, app: Server, url: str, slug: str) -> None:
    only = set(run.args.only or [])
    reads = [op for op in read_operations(run.sample.searches) if not only or any(o in op.name for o in only)]
    run.results["operations"] = []
    for op in reads:
        try:
            measured = await measure_read(run, op)
        except Exception as exc:  # one broken operation must not lose the rest of the run
            measured = Measured(op.name, note=f"failed: {type(exc).__name__}: {exc}"[:400])
            run.skip(f"{op.name}: {measured.note}")
        run.results["operations"].append(measured.as_dict())
    if not only or "size" in only:
        run.results["card_by_size"] = await card_by_size(run)
    if not only or "write" in only:
        run.results["writes"] = await writes.write_batches(run, url)
    if not only or "export" in only:
        run.results["export"] = await writes.export_csv(run, app)
    if not only or "import" in only:
        run.results["import"] = writes.import_csv(run, url, slug)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--keep-db", type=Path, help="keep the PostgreSQL cluster (and its data) in this directory")
    parser.add_argument("--quick", action="store_true", help="fewer requests and shorter load (a smoke run)")
    parser.add_argument("--requests", type=int, help="requests at one client per operation (default 200; quick 40)")
    parser.add_argument("--app-factory", default="app:create_app", help="e.g. bench.experiments:read_per_batch")
    parser.add_argument("--app-env", nargs="*", default=[], metavar="KEY=VALUE", help="app settings for an experiment")
    parser.add_argument("--seconds", type=float, help="seconds of load at 8 clients per operation (default 5; quick 1)")
    parser.add_argument("--write-batches", type=int, default=4, help="batches of 500 per write operation")
    parser.add_argument("--import-rows", type=int, default=2000, help="rows of the larger CSV import (and a 1/4 one)")
    parser.add_argument("--no-peer", action="store_true", help="skip PostGraphile")
    parser.add_argument(
        "--only", nargs="*", help="operations whose name contains one of these (and: size, write, export)"
    )
    parser.add_argument("--results", type=Path, default=report.RESULTS_DIR)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = Settings(
        requests=args.requests or (40 if args.quick else 200),
        seconds=args.seconds or (1.0 if args.quick else 5.0),
    )
    started = dt.datetime.now(dt.UTC)
    machine = report.machine_info()
    with bench_postgres(args.keep_db) as url:
        generated = generate(url, args.scale)
        install_helpers(url)
        key = asyncio.run(issue_owner_key(url, generated.org_id))
        sample = pick_sample(url, generated.org_id, key, seed=1)
        peer_reason = "--no-peer" if args.no_peer else peer_available()
        with (
            app_server(url, dict(kv.split("=", 1) for kv in args.app_env), args.app_factory) as app,
            floor_server(url, str(generated.org_id)) as floor,
        ):
            peer_ctx = None
            if peer_reason is None:
                try:
                    install_peer()
                    peer_ctx = peer_server(url)
                except Exception as exc:  # a peer that cannot start must not stop the benchmark
                    peer_reason = f"PostGraphile could not be installed or started: {exc}"[:400]
            run = Run(args, settings, sample, Target("127.0.0.1", app.port), Target("127.0.0.1", floor.port), None)
            if peer_reason:
                run.skip(f"peer: {peer_reason}")
            if peer_ctx is not None:
                with peer_ctx as peer:
                    run.peer = Target("127.0.0.1", peer.port)
                    asyncio.run(measure_all(run, app, url, generated.slug))
            else:
                asyncio.run(measure_all(run, app, url, generated.slug))
    run.results.update(
        started=started.isoformat(),
        finished=dt.datetime.now(dt.UTC).isoformat(),
        scale=args.scale,
        settings={"requests_at_1_client": settings.requests, "seconds_at_8_clients": settings.seconds},
        app={"factory": args.app_factory, "env": args.app_env},
        generated={
            "org": generated.slug,
            "reused": generated.reused,
            "rows": generated.rows,
            "seconds": generated.seconds,
        },
        peer=None
        if run.peer is None
        else f"PostGraphile {peer_version()} (Amber preset) on Node, with the Promise.withResolvers shim",
        machine={**machine, "load_after": report.load_average()},
        skipped=run.skipped,
        probes={str(k): str(v) for k, v in sample.probes.items()},
        searches=sample.searches,
    )
    paths = report.write(run.results, args.results)
    print("\n" + report.markdown(run.results))
    print("results: " + ", ".join(str(p) for p in paths))
