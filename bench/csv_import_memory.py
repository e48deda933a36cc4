"""Peak memory of a big CSV import: it must stay flat however many lines.

    .venv/bin/python -m bench.csv_import_memory [--rows 1000000] [--postgres]

Writes a CSV of --rows new customers to a temporary file (streamed, never held
in memory), imports it with resolvers/csv_import.py as `personagraph import-csv`
does (batches of 500 lines per transaction), and prints the process's resident
memory (current and peak) every --every lines, with the import rate. Flat
means the current RSS stops growing after the first batches. Runs on a fresh
SQLite file by default, or on a throwaway PostgreSQL (tests/pgcluster.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cli import migrate
from database import Database
from engines import create_engine
from resolvers.csv_import import ImportSummary, import_csv
from resolvers.organizations import create_organization
from settings import Settings
from tests.pgcluster import running_postgres

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("first_name,last_name,email,phone,birthday,loyalty_member,tags,attr:budtender\n")
        for i in range(rows):
            f.write(
                f"First{i},Last{i},customer{i}@example.com,+1{415 + i % 3}{2000000 + i % 8000000:07d},"
                f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10},{'yes' if i % 3 else 'no'},vip;medical,Sam\n"
            )


async def measure(settings: Settings, path: Path, every: int) -> None:
    db = Database(create_engine(settings))
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug="bench-csv", name="Bench")
    summary = ImportSummary()
    started = time.perf_counter()
    print(f"{'lines':>10} {'rss MB':>8} {'peak MB':>8} {'lines/s':>8}")
    print(f"{0:>10} {rss_mb():8.1f} {peak_mb():8.1f} {'-':>8}")
    with path.open("rb") as f:
        async for report in import_csv(db, org.id, f, number_block=500):
            summary.add(report)
            if summary.lines % every == 0:
                rate = summary.lines / (time.perf_counter() - started)
                print(f"{summary.lines:>10} {rss_mb():8.1f} {peak_mb():8.1f} {rate:8.0f}", flush=True)
    print(summary.as_dict())
    await db.dispose()


@contextlib.contextmanager
def database(postgres: bool, folder: Path) -> Iterator[Settings]:
    if postgres:
        with running_postgres() as url:
            yield Settings(database_url=url)
    else:
        yield Settings(database_url=f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="personagraph-csv-bench-") as tmp:
        folder = Path(tmp)
        path = folder / "contacts.csv"
        write_csv(path, args.rows)
        print(f"{path.stat().st_size / 2**20:.0f} MB CSV, {args.rows} lines")
        with database(args.postgres, folder) as settings:
            migrate(settings)
            asyncio.run(measure(settings, path, args.every))


if __name__ == "__main__":
    main()
