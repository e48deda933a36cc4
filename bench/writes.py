"""The benchmark's writes, each through the app as a client would send it: the
batch mutations (rows/s at one client and at eight), the CSV export (rows/s and
the server's peak RSS) and `personagraph import-csv` (rows/s and the command's
peak RSS). bench/harness.py runs them after the reads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import psycopg

from bench.client import Connection, HttpError, Target, get, one
from bench.cluster import sqlalchemy_url
from bench.measure import graphql_request
from bench.operations import IMPORT_BASE, INGEST_CONTACTS, RECORD_ORDERS, contact, new_phone, order
from bench.servers import LOGS, ROOT, Server, peak_rss_kb, reset_peak_rss

if TYPE_CHECKING:
    from bench.harness import Run

# The personas the write benchmarks add to a reused database come from these sources: the sample
# leaves them out, so every run on the same data searches for the same kind of persona (a partial
# name drawn from them, "cust", matched every contact ingested so far: 5x the generated data's).
WRITE_SOURCES = ("bench-ingest", "bench-import")
# Each CSV export is timed this many times (after one more, not counted): rows/s is their median.
EXPORT_RUNS = 5
WRITE_CLIENTS = (1, 8)  # as the reads: one client, then eight at once against the one server process


def first_new_contact(url: str) -> int:
    """The first contact number (bench.operations.new_phone) past every one an earlier run ingested
    in batches: each run's contacts are new, however soon after the last it starts."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT max(phone) FROM personas WHERE phone >= %s AND phone < %s", (new_phone(0), new_phone(IMPORT_BASE))
        ).fetchone()
    found = row[0] if row else None
    return 0 if found is None else int(found[-7:]) - int(new_phone(0)[-7:]) + 1


async def write_batches(run: Run, url: str) -> list[dict[str, Any]]:
    """ingestContacts then recordOrders, batches of 500 through the app over HTTP, by one client and
    then by eight at once (partners sending in parallel): rows/s over the wall time of each."""
    print("- ingestion (batches of 500)", flush=True)
    batches, size = run.args.write_batches, 500
    stamp = int(time.time())
    offset = first_new_contact(url)  # new contacts (area code 628 is never generated)
    rng = random.Random(stamp)
    out: list[dict[str, Any]] = []
    for clients in WRITE_CLIENTS:
        # Each client's own contacts; the orders go to customers among every contact of this round.
        contacts = batches * size * clients
        runs: list[tuple[str, str, str, list[list[dict[str, Any]]], dict[str, Any]]] = [
            ("ingestContacts", INGEST_CONTACTS, "contacts",
             [[contact(offset + b * size + i) for i in range(size)] for b in range(batches * clients)],
             {"source": WRITE_SOURCES[0]}),
            ("recordOrders", RECORD_ORDERS, "orders",
             [[order(offset + b * size + i, offset + rng.randrange(contacts), rng, str(stamp)) for i in range(size)]
              for b in range(batches * clients)], {}),
        ]  # fmt: skip
        offset += contacts
        for field_name, doc, rows_key, payloads, extra in runs:
            requests = [graphql_request(doc, {"input": {rows_key: p, **extra}}, run.sample.key) for p in payloads]
            try:
                rows, seconds = await _send_batches(run.app, field_name, requests, clients)
            except HttpError as exc:
                run.skip(f"{field_name} at {clients} client(s): {exc}"[:400])
                return out
            print(f"  {field_name}, {clients} client(s): {rows / seconds:,.0f} rows/s ({rows} rows)", flush=True)
            out.append(
                {
                    "operation": field_name,
                    "clients": clients,
                    "rows": rows,
                    "seconds": seconds,
                    "rows_per_s": rows / seconds,
                }
            )
    return out


async def _send_batches(target: Target, field_name: str, requests: list[bytes], clients: int) -> tuple[int, float]:
    """Every request sent, `clients` at a time (client k sends requests k, k + clients, ...); the rows
    written without a userError, and the wall time."""

    async def client(mine: list[bytes]) -> int:
        written = 0
        conn = await Connection.open(target)
        try:
            for request in mine:
                status, body = await conn.send(request)
                if status != 200:
                    raise HttpError(f"HTTP {status}: {body[:300]!r}")
                data = orjson.loads(body)
                if data.get("errors"):
                    raise HttpError(f"errors: {str(data['errors'])[:300]}")
                written += sum(not r["userErrors"] for r in data["data"][field_name]["results"])
        finally:
            await conn.close()
        return written

    started = time.perf_counter()
    written = await asyncio.gather(*(client(requests[k::clients]) for k in range(clients)))
    return sum(written), time.perf_counter() - started


async def export_csv(run: Run, app: Server) -> list[dict[str, Any]]:
    """GET /export/personas.csv: a search of about 10k rows, then every persona; rows/s (the median of
    EXPORT_RUNS after one not counted, as the other operations' medians come from warm servers) and
    the server's peak RSS over them."""
    print("- CSV export", flush=True)
    status, _ = await one(run.app, get("/export/personas.csv"))
    if status == 404:
        run.skip("CSV export: no /export/personas.csv route")
        return []
    out = []
    auth = {"Authorization": f"Bearer {run.sample.key}"}
    for label, query in (("about 10k rows", f"signed_up<{run.sample.export_until}"), ("every persona", "")):
        path = "/export/personas.csv" + (f"?query={query.replace('<', '%3C')}" if query else "")
        reset = reset_peak_rss(app.pid)
        timings: list[float] = []
        for _ in range(EXPORT_RUNS + 1):
            started = time.perf_counter()
            status, body = await one(run.app, get(path, auth))
            timings.append(time.perf_counter() - started)
            if status != 200:
                break
        if status != 200:
            run.skip(f"CSV export ({label}): HTTP {status} {body[:200]!r}")
            continue
        seconds = statistics.median(timings[1:])
        rows = body.count(b"\n") - 1
        peak = peak_rss_kb(app.pid) if reset else None
        print(f"  {label}: {rows:,} rows, {rows / seconds:,.0f} rows/s, peak RSS {peak and peak // 1024} MB")
        out.append(
            {"export": label, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_kb": peak}
        )
    return out


def _import_file(path: Path, rows: int, offset: int) -> None:
    """A CSV of new contacts in the columns of resolvers/csv_import.py (phones the generator never uses)."""
    with path.open("w", encoding="utf-8") as f:
        f.write("first_name,last_name,email,phone,loyalty_member,tags\n")
        for i in range(offset, offset + rows):
            f.write(f"Import{i},Customer,import{i}@bench.example,{new_phone(i)},true,vip\n")


def _run_measuring_rss(cmd: list[str], env: dict[str, str]) -> tuple[int, float, int]:
    """(exit status, seconds, peak RSS in kB) of a command; the peak is read from /proc while it runs."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            peak = max(peak, peak_rss_kb(proc.pid))
        time.sleep(0.05)
    return proc.returncode, time.perf_counter() - started, peak


def import_csv(run: Run, url: str, slug: str) -> list[dict[str, Any]]:
    """`personagraph import-csv` (the path for big files: the HTTP route is bounded by MAX_BODY_BYTES)
    at two sizes: rows/s and the command's peak RSS, which stays flat if memory does.

    Each size's rate is over the whole command, start-up included (1.4-2 s here, more than the
    small imports themselves); the rate past start-up is the difference between the two sizes
    (the extra rows over the extra seconds), where the start-up cancels out."""
    print("- CSV import (personagraph import-csv)", flush=True)
    usage = subprocess.run(
        [sys.executable, "-m", "cli", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if "import-csv" not in usage.stdout:
        run.skip("CSV import: no `personagraph import-csv` command yet")
        return []
    out: list[dict[str, Any]] = []
    offset = IMPORT_BASE + (int(time.time()) % 1000) * 4000
    for rows in (run.args.import_rows // 4, run.args.import_rows):
        path = LOGS / f"import-{rows}.csv"
        LOGS.mkdir(parents=True, exist_ok=True)
        _import_file(path, rows, offset)
        offset += rows
        cmd = [sys.executable, "-m", "cli", "import-csv", "--org", slug, "--source", WRITE_SOURCES[1], str(path)]
        status, seconds, peak = _run_measuring_rss(cmd, {"DATABASE_URL": sqlalchemy_url(url)})
        if status != 0:
            run.skip(f"CSV import of {rows} rows: exit status {status}")
            continue
        rate = rows / seconds
        entry = {"import": f"{rows:,} rows", "rows": rows, "seconds": seconds, "rows_per_s": rate, "peak_rss_kb": peak}
        if out and seconds > out[-1]["seconds"]:
            entry["past_startup_rows_per_s"] = (rows - out[-1]["rows"]) / (seconds - out[-1]["seconds"])
        out.append(entry)
        past = entry.get("past_startup_rows_per_s")
        print(
            f"  {rows:,} rows: {rate:,.0f} rows/s over the whole command ({seconds:.1f} s)"
            + (f", {past:,.0f} rows/s past start-up" if past else "")
            + f", peak {peak // 1024} MB"
        )
    if out:
        best = out[-1].get("past_startup_rows_per_s") or out[-1]["rows_per_s"]
        minutes = 1_000_000 / best / 60
        run.skip(
            f"CSV import of 1M rows: not in this run (at {best:,.0f} rows/s it would take {minutes:,.0f} min); "
            "`python -m bench.csv_import_memory --rows 1000000 --postgres` measures it"
        )
    return out
