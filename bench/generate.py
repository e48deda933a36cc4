"""Fill PostgreSQL with a realistic organization at a chosen scale, with COPY.

    .venv/bin/python -m bench.generate --scale small [--url URL] [--keep-db DIR] [--workers N] [--force]
                                       [--history-fraction F]

Scales (personas / orders / messages; the ledger comes out at about two
entries per member order plus gifts and redemptions):

    tiny     500 /     10,000 /     10,000   a quick check (seconds)
    small  20,000 /  1,000,000 /  1,000,000   the benchmark's scale (a few minutes here)
    large 1,000,000 / 10,000,000 / 10,000,000  search at a million personas (see README)

The database is migrated with the project's migrations (cli.migrate) first.
Everything of one organization is written in ONE transaction, so an
interrupted run leaves nothing; an organization `bench-<scale>` that exists
is reused (--force makes a new one beside it). Worker processes make chunks
of personas (bench/dataset.py) while this process streams them to the server
with psycopg's `cursor.copy`. Order counts are log-normal: most personas have
a few orders, a long tail has thousands; four probe personas have exactly
5, 50, 500 and 5,000 orders (those that fit the scale) for the card's
flatness check. Rollups and purchase counts are computed from the generated
rows and copied too; a sample is checked against resolvers/rollups.recompute.

--history-fraction F (0 < F <= 1) keeps every persona with its identity keys,
consents, attributes, tags and sign-ups, but makes only F of the scale's orders
and messages (and so of the order lines, ledger entries, actions, pixel events
and surveys that hang off them), with the same skew. It is for the search
figures at `large` where the disk cannot hold the whole history (search reads
personas, identity keys, tags and rollups, never the history). The fraction
is written into the organization's name, e.g. "... (bench-large, history x0.1)".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import random
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.cluster import bench_postgres, libpq_url, sqlalchemy_url
from bench.dataset import Org, PersonaMaker, Plan, lognormal_counts, tombstones
from bench.dataset_values import TABLES
from cli import migrate
from models.enums import Channel
from models.export import TAG_SEPARATOR, consent_column
from resolvers.history import KINDS
from settings import Settings

PROBE_SIZES = (5, 50, 500, 5000)
CHUNK = 500
STORES = ["Downtown", "Eastside", "Harbor", "Uptown", "Mission", "Sunset", "Bayview", "Marina", "Oakland", "Berkeley"]
DISCOUNTS = [("$5 off", 100), ("Free pre-roll", 150), ("$10 off", 200), ("20% off", 400), ("$25 off", 800)]
AUDIENCES = [("VIP", "tag:vip", 1500), ("Big spenders", "spent>500", 1000), ("Text subscribers", "opted_in:TEXT", 1000)]


@dataclass(frozen=True)
class Scale:
    personas: int
    orders: int
    messages: int
    order_cap: int


SCALES = {
    "tiny": Scale(500, 10_000, 10_000, 600),
    "small": Scale(20_000, 1_000_000, 1_000_000, 6000),
    "large": Scale(1_000_000, 10_000_000, 10_000_000, 6000),
}


@dataclass(frozen=True)
class Generated:
    org_id: uuid.UUID
    slug: str
    rows: dict[str, int]
    seconds: float
    reused: bool

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def slug_for(scale: str) -> str:
    return f"bench-{scale}"


def plans(scale: Scale, seed: int, history_fraction: float = 1.0) -> list[Plan]:
    rng = random.Random(seed)
    total_orders = round(scale.orders * history_fraction)
    total_messages = round(scale.messages * history_fraction)
    orders = lognormal_counts(rng, scale.personas, total_orders, sigma=1.9, cap=scale.order_cap)
    messages = lognormal_counts(rng, scale.personas, total_messages, sigma=1.0, cap=2000)
    probes = [p for p in PROBE_SIZES if p <= total_orders // 10]
    for k, size in enumerate(probes):
        orders[1 + k] = size  # persona numbers 2, 3, 4, 5
    return [
        Plan(start, orders[start : start + CHUNK], messages[start : start + CHUNK])
        for start in range(0, scale.personas, CHUNK)
    ]


_WORKER: dict[str, object] = {}


def _init_worker(org: Org, seed: int) -> None:
    _WORKER.update(org=org, seed=seed)


def _make_chunk(plan: Plan) -> dict[str, tuple[int, str]]:
    org, seed = _WORKER["org"], _WORKER["seed"]
    assert isinstance(org, Org)
    assert isinstance(seed, int)
    chunk = PersonaMaker(org, plan.start // CHUNK, seed).make(plan)
    return {table: (len(rows), "".join(rows)) for table, rows in chunk.rows.items() if rows}


def _chunks(org: Org, work: list[Plan], seed: int, workers: int) -> Iterator[dict[str, tuple[int, str]]]:
    if workers <= 0:
        _init_worker(org, seed)
        yield from map(_make_chunk, work)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(org, seed)) as pool:
        yield from pool.imap(_make_chunk, work)


def _copy(cur: psycopg.Cursor[tuple[object, ...]], table: str, data: str) -> None:
    with cur.copy(f"COPY {table} ({', '.join(TABLES[table])}) FROM STDIN") as copy:
        copy.write(data)


def _setup_org(
    cur: psycopg.Cursor[tuple[object, ...]], slug: str, now: dt.datetime, n: int, history_fraction: float = 1.0
) -> Org:
    org_id = str(uuid.uuid4())
    history = "" if history_fraction == 1 else f", history x{history_fraction:g}"
    cur.execute(
        "INSERT INTO organizations (id, slug, name, default_region, points_per_dollar_milli, points_per_order,"
        " show_pin_in_wallets, referral_points_enabled, referral_points, points_expire_after_days,"
        " next_persona_number, created_at) VALUES (%s, %s, %s, 'US', 1000, 5, true, false, 0, NULL, %s, %s)",
        (org_id, slug, f"Benchmark dispensary ({slug}{history})", n * 2 + 1000, now - dt.timedelta(days=3 * 365)),
    )
    store_ids = [str(uuid.uuid4()) for _ in STORES]
    for store_id, name in zip(store_ids, STORES, strict=True):
        cur.execute("INSERT INTO stores VALUES (%s, %s, %s, %s)", (org_id, store_id, name, now))
    discounts = [(str(uuid.uuid4()), name, cost) for name, cost in DISCOUNTS]
    for discount_id, name, cost in discounts:
        cur.execute(
            "INSERT INTO discounts (org_id, id, name, points_cost, starts_at, ends_at, created_at)"
            " VALUES (%s, %s, %s, %s, NULL, NULL, %s)",
            (org_id, discount_id, name, cost, now),
        )
    for name, query, multiplier in [("ALL", "", 1000), *AUDIENCES]:
        cur.execute(
            "INSERT INTO audiences (org_id, id, name, query, is_default, points_multiplier_milli, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (org_id, str(uuid.uuid4()), name, query, name == "ALL", multiplier, now),
        )
    return Org(org_id, now, n, store_ids, discounts, secrets.randbelow(1 << 20))


def _skip_foreign_key_checks(cur: psycopg.Cursor[tuple[object, ...]]) -> bool:
    """Turn off the per-row foreign-key triggers for this load, where allowed; False when turned off.

    They make COPY ~20x slower (one lookup and row lock per reference), and the
    generator makes every reference itself. Needs a superuser, as the harness's
    own cluster has; elsewhere the load is just slower."""
    try:
        cur.execute("SET session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        cur.connection.rollback()
        return True
    cur.connection.commit()  # a session setting: it outlives this transaction
    return False


def _drop_secondary_indexes(cur: psycopg.Cursor[tuple[object, ...]]) -> list[str]:
    """Drop the loaded tables' indexes that back no constraint; the statements that make them again.

    Building an index once over all rows is several times cheaper than keeping
    it up to date row by row. Same transaction as the load: an interrupted run
    rolls the drop back too. The definitions are read from the catalog, so the
    indexes come back exactly as the migrations made them."""
    cur.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class t ON t.oid = i.indrelid"
        " WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY(%s)"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        (list(TABLES),),
    )
    found = cur.fetchall()
    for name, _definition in found:
        cur.execute(f"DROP INDEX {name}")
    return [str(definition) for _name, definition in found]


def _history_counts_sql() -> str:
    """models.HistoryCount for the loaded organization, as its triggers keep it: the rows of each
    kind per persona (a merge for both personas it names), from resolvers.history.KINDS."""
    # Table, column and kind names from resolvers.history.KINDS; the organization is a parameter.
    select = "SELECT {column} AS persona_id, '{kind}' AS kind FROM {table} WHERE org_id = %(org)s"
    owned = " UNION ALL ".join(
        select.format(column=column, kind=kind.value, table=spec.table.name)
        for kind, spec in KINDS.items()
        for column in spec.persona_columns
    )
    insert = "INSERT INTO history_counts (org_id, persona_id, kind, count) SELECT %(org)s, persona_id, kind, count(*)"
    return (
        f"{insert} FROM ({owned}) AS owned GROUP BY persona_id, kind"
        " ON CONFLICT (org_id, persona_id, kind) DO UPDATE SET count = excluded.count"
    )


# models.NamePart for the loaded organization, as its triggers keep it.
NAME_PARTS_SQL = (
    "INSERT INTO persona_name_parts (org_id, part)"
    " SELECT org_id, lower(first_name) FROM personas WHERE org_id = %(org)s AND first_name IS NOT NULL"
    " UNION SELECT org_id, lower(last_name) FROM personas WHERE org_id = %(org)s AND last_name IS NOT NULL"
    " ON CONFLICT DO NOTHING"
)


def _export_cells_sql() -> list[str]:
    """models.PersonaExportCells for the loaded organization, as its triggers keep them (migration 0007)."""
    # Built from Channel's values and constants; the organization is a parameter.
    columns = [consent_column(channel) for channel in Channel]
    statuses = ", ".join(f"max(status) FILTER (WHERE channel = '{channel.value}')" for channel in Channel)
    tags = f"string_agg(tag, '{TAG_SEPARATOR}' ORDER BY tag COLLATE \"C\")"
    per_persona = "WHERE org_id = %(org)s GROUP BY org_id, persona_id"
    replace = ", ".join(f"{column} = excluded.{column}" for column in columns)
    return [
        f"INSERT INTO persona_export_cells (org_id, persona_id, tags)"  # noqa: S608
        f" SELECT org_id, persona_id, {tags} FROM persona_tags {per_persona}",
        f"INSERT INTO persona_export_cells (org_id, persona_id, {', '.join(columns)})"  # noqa: S608
        f" SELECT org_id, persona_id, {statuses} FROM consents {per_persona}"
        f" ON CONFLICT (org_id, persona_id) DO UPDATE SET {replace}",
    ]


def existing(url: str, slug: str) -> uuid.UUID | None:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT id FROM organizations WHERE slug = %s", (slug,)).fetchone()
    return uuid.UUID(str(row[0])) if row else None


def generate(
    url: str,
    scale_name: str,
    *,
    seed: int = 1,
    workers: int | None = None,
    force: bool = False,
    quiet: bool = False,
    history_fraction: float = 1.0,
) -> Generated:
    """Migrate, then make the organization `bench-<scale>` unless it exists (or force).

    `history_fraction` < 1 makes that fraction of the scale's orders and messages only."""
    if not 0 < history_fraction <= 1:
        raise ValueError(f"history_fraction must be in (0, 1], got {history_fraction}")
    say = (lambda *_: None) if quiet else print
    migrate(Settings(database_url=sqlalchemy_url(url)))
    slug = slug_for(scale_name)
    found = existing(url, slug)
    if found is not None and not force:
        say(f"reusing organization {slug} ({found})")
        return Generated(found, slug, {}, 0.0, reused=True)
    if found is not None:
        slug = f"{slug}-{secrets.token_hex(3)}"
    scale = SCALES[scale_name]
    workers = max(1, (os.cpu_count() or 2) - 1) if workers is None else workers
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    work = plans(scale, seed, history_fraction)
    rows = dict.fromkeys(TABLES, 0)
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        checked = _skip_foreign_key_checks(cur)
        rebuild = _drop_secondary_indexes(cur)
        org = _setup_org(cur, slug, now, scale.personas, history_fraction)
        survivors: list[tuple[str, int]] = []
        for n, chunk in enumerate(_chunks(org, work, seed, workers), start=1):
            for table, (count, data) in chunk.items():
                _copy(cur, table, data)
                rows[table] += count
            survivors += _survivor_candidates(chunk, n)
            if not quiet and (n % 10 == 0 or n == len(work)):
                spent = time.perf_counter() - started
                total = sum(rows.values())
                print(f"  {n}/{len(work)} chunks, {total:,} rows, {total / spent:,.0f} rows/s", flush=True)
        merged = tombstones(org, scale.personas + 1, survivors, seed)
        for table, lines in merged.rows.items():
            if lines:
                _copy(cur, table, "".join(lines))
                rows[table] += len(lines)
        say(f"rebuilding {len(rebuild)} indexes")
        for statement in rebuild:
            cur.execute(statement)
        # The replica role kept the history counts' triggers (migration 0005) off too: counted once.
        cur.execute(_history_counts_sql(), {"org": org.org_id})
        # And the name parts' (migration 0006): listed once.
        cur.execute(NAME_PARTS_SQL, {"org": org.org_id})
        # And the export cells' (migration 0007).
        for statement in _export_cells_sql():
            cur.execute(statement, {"org": org.org_id})
        conn.commit()
    copied = time.perf_counter() - started
    if not checked:
        say("foreign keys were not checked row by row (session_replication_role = replica)")
    say(f"copied {sum(rows.values()):,} rows in {copied:.1f}s ({sum(rows.values()) / copied:,.0f} rows/s); analyzing")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for table in (*TABLES, "persona_name_parts", "persona_export_cells"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    seconds = time.perf_counter() - started
    result = Generated(uuid.UUID(org.org_id), slug, rows, seconds, reused=False)
    say(report(result))
    return result


def _survivor_candidates(chunk: dict[str, tuple[int, str]], n: int) -> list[tuple[str, int]]:
    """Two personas per chunk get a merged-away duplicate."""
    if "personas" not in chunk:
        return []
    lines = chunk["personas"][1].split("\n", 3)[:2]
    return [(line.split("\t")[1], int(line.split("\t")[2])) for line in lines if line]


def report(result: Generated) -> str:
    lines = [f"organization {result.slug}: {result.total:,} rows in {result.seconds:.1f}s"]
    lines.append(f"  {result.total / result.seconds:,.0f} rows/s overall (COPY, then VACUUM ANALYZE)")
    lines += [f"  {table:<20} {count:>12,}" for table, count in result.rows.items() if count]
    return "\n".join(lines)


async def verify_rollups(url: str, org_id: uuid.UUID, sample: int = 25) -> int:
    """Compare stored rollups with resolvers/rollups.recompute for a sample; the number that differ."""
    from sqlalchemy import text

    from database import Database
    from engines import create_engine
    from resolvers import rollups

    db = Database(create_engine(Settings(database_url=sqlalchemy_url(url))))
    try:
        async with db.session() as session:
            ids = (
                await session.execute(
                    text(
                        "(SELECT persona_id FROM persona_rollups WHERE org_id = :o ORDER BY orders_count DESC LIMIT 3)"
                        " UNION (SELECT persona_id FROM persona_rollups WHERE org_id = :o"
                        " ORDER BY md5(persona_id::text) LIMIT :n)"
                    ),
                    {"o": org_id, "n": sample},
                )
            ).scalars()
            bad = 0
            for persona_id in ids:
                fresh = await rollups.recompute(session, org_id, persona_id)
                kept = await rollups.stored(session, org_id, persona_id)
                if fresh != kept:
                    bad += 1
                    print(f"rollup mismatch for persona {persona_id}")
            return bad
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    parser.add_argument("--url", help="an existing PostgreSQL (default: $PERSONAGRAPH_BENCH_DATABASE_URL or a new one)")
    parser.add_argument("--keep-db", type=Path, help="a cluster directory kept between runs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, help="generator processes (default: cores - 1; 0 = in process)")
    parser.add_argument("--force", action="store_true", help="generate a new organization even if one exists")
    parser.add_argument(
        "--history-fraction",
        type=float,
        default=1.0,
        metavar="F",
        help="make only this fraction (0 < F <= 1) of the scale's orders and messages; every persona is kept",
    )
    args = parser.parse_args()
    if not 0 < args.history_fraction <= 1:
        parser.error("--history-fraction must be above 0 and at most 1")
    with contextlib_url(args.url, args.keep_db) as url:
        result = generate(
            url,
            args.scale,
            seed=args.seed,
            workers=args.workers,
            force=args.force,
            history_fraction=args.history_fraction,
        )
        bad = asyncio.run(verify_rollups(url, result.org_id))
        print("rollups check: " + ("every sampled persona matches a recompute" if not bad else f"{bad} differ"))
        raise SystemExit(1 if bad else 0)


def contextlib_url(url: str | None, keep_dir: Path | None) -> contextlib.AbstractContextManager[str]:
    return contextlib.nullcontext(libpq_url(url)) if url else bench_postgres(keep_dir)


if __name__ == "__main__":
    main()
