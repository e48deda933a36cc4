"""Where the app's time goes for one operation: py-spy samples the uvicorn
process while one client sends the operation back to back.

    .venv/bin/python -m bench.profile [--scale small] [--keep-db DIR] [--op card] [--seconds 20]

Needs py-spy in the venv (`.venv/bin/pip install py-spy`; it is not a project
dependency). Prints the share of samples per layer (HTTP, GraphQL execution,
SQLAlchemy, psycopg, our schema/loaders/resolvers, idle in the event loop) and
the functions with the most inclusive and self time; the raw collapsed stacks
are kept in var/bench-logs/profile-<op>.txt for a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.client import Target, latency
from bench.cluster import bench_postgres
from bench.generate import SCALES, generate
from bench.harness import _requests, issue_owner_key, pick_sample
from bench.operations import read_operations
from bench.servers import LOGS, app_server

LAYERS = (
    ("uvicorn/h11 (HTTP)", ("uvicorn/", "h11/")),
    ("starlette", ("starlette/",)),
    ("strawberry", ("strawberry/",)),
    ("graphql-core", ("graphql/",)),
    ("aiodataloader", ("aiodataloader",)),
    ("sqlalchemy", ("sqlalchemy/",)),
    ("psycopg", ("psycopg/", "psycopg_pool/")),
    ("our schema/", ("/main/schema/",)),
    ("our loaders/", ("/main/loaders/",)),
    ("our resolvers/", ("/main/resolvers/",)),
    ("our permissions/", ("/main/permissions/",)),
    ("asyncio", ("asyncio/",)),
)


def summarize(raw: Path, top: int = 25) -> str:
    """Layers (by the innermost frame of a known layer) and the top functions of py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
        layer = "other"
        for frame in reversed(frames):
            found = next((name for name, marks in LAYERS if any(m in frame for m in marks)), None)
            if found:
                layer = found
                break
        if "select" in frames[-1] and "selectors" in frames[-1]:
            layer = "idle (waiting for the database or the client)"
        layers[layer] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "by layer (innermost known frame):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in layers.most_common()]
    lines += ["", "inclusive:"] + [f"  {n / total:6.1%}  {f[:150]}" for f, n in inclusive.most_common(top)]
    lines += ["", "self:"] + [f"  {n / total:6.1%}  {f[:150]}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--keep-db", type=Path)
    parser.add_argument("--op", default="card", help="an operation name of the harness (e.g. card, 'tab: history')")
    parser.add_argument("--app-factory", default="app:create_app", help="e.g. bench.experiments:read_per_batch")
    parser.add_argument("--app-env", nargs="*", default=[], metavar="KEY=VALUE", help="app settings for an experiment")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    with bench_postgres(args.keep_db) as url:
        generated = generate(url, args.scale)
        key = asyncio.run(issue_owner_key(url, generated.org_id))
        sample = pick_sample(url, generated.org_id, key, seed=1)
        op = next(o for o in read_operations(sample.searches) if o.name == args.op)
        with app_server(url, dict(kv.split("=", 1) for kv in args.app_env), args.app_factory) as app:
            target = Target("127.0.0.1", app.port)
            LOGS.mkdir(parents=True, exist_ok=True)
            raw = LOGS / f"profile-{args.op.replace(' ', '').replace(':', '-')}.txt"

            class _Run:
                pass

            fake = _Run()
            fake.sample = sample  # type: ignore[attr-defined]
            requests, _, _ = _requests(fake, op, sample.personas)  # type: ignore[arg-type]
            asyncio.run(latency(target, requests, 20))
            spy = subprocess.Popen(
                [py_spy, "record", "-p", str(app.pid), "-d", str(args.seconds), "-r", "250", "--format", "raw",
                 "-o", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(1)
            result = asyncio.run(latency(target, requests, 100_000, max_seconds=args.seconds - 2))
            spy.wait(timeout=args.seconds + 30)
    print(f"{op.name}: {result.samples} requests at 1 client, median {result.p50_ms:.1f} ms\n")
    print(summarize(raw))
    print(f"\ncollapsed stacks: {raw}")


if __name__ == "__main__":
    main()
