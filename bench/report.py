"""The results of a run: bench/results/<date>.json, a Markdown table beside it,
and a PNG chart (card latency against orders per persona; requests per second
per operation). matplotlib is optional: without it the chart is skipped with
a message and everything else is written."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_gb = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)

    def version(*cmd: str) -> str | None:
        if shutil.which(cmd[0]) is None:
            return None
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else None

    from tests.pgcluster import find_bindir

    try:
        postgres = version(str(find_bindir() / "postgres"), "--version")
    except RuntimeError:
        postgres = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgres": postgres,
        "node": version("node", "--version"),
        "load_before": load_average(),
    }


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _rps(figures: dict[str, Any] | None) -> str:
    return "" if not figures else f"{figures['rps_8']:.0f}"


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def markdown(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    lines = [
        f"# Benchmark {results.get('started', '')[:16]} UTC, scale `{results.get('scale')}`",
        "",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB; {m.get('postgres')}; "
        f"Python {m.get('python')}; Node {m.get('node')}. Load average before/after: "
        f"{m.get('load_before')} / {m.get('load_after')}.",
        f"Peer: {results.get('peer') or 'not run'}. One client: {results['settings']['requests_at_1_client']} "
        f"requests per operation; eight clients: {results['settings']['seconds_at_8_clients']} s.",
        "",
        "| operation | app p50 ms | p95 | p99 | app req/s (8) | floor p50 | floor req/s | p50 vs floor "
        "| req/s vs floor | peer p50 | peer req/s | p50 vs peer | req/s vs peer | parity |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for op in results.get("operations", []):
        app, floor, peer, r = op.get("app"), op.get("floor"), op.get("peer"), op.get("ratios", {})
        if app is None:
            lines.append(f"| {op['name']} | {op.get('note', 'not measured')} |" + " |" * 13)
            continue
        parity = "same data" if not op.get("parity") else f"{len(op['parity'])} differences"
        lines.append(
            f"| {op['name']} | {_ms(app['p50_ms'])} | {_ms(app['p95_ms'])} | {_ms(app['p99_ms'])} | {app['rps_8']:.0f} "
            f"| {_ms(floor and floor['p50_ms'])} | {_rps(floor)} "
            f"| {_x(r.get('p50_vs_floor'))} | {_x(r.get('rps_vs_floor'))} "
            f"| {_ms(peer and peer['p50_ms'])} | {_rps(peer)} "
            f"| {_x(r.get('p50_vs_peer'))} | {_x(r.get('rps_vs_peer'))} | {parity} |"
        )
    sizes = results.get("card_by_size") or []
    if sizes:
        lines += ["", "Full card, median ms at one client, by orders per persona:", ""]
        lines += ["| orders | app | floor | peer | app vs 5-order card |", "|---:|---:|---:|---:|---:|"]
        base = sizes[0]["app"]["p50_ms"]
        for row in sizes:
            peer = row.get("peer", {}).get("p50_ms")
            lines.append(
                f"| {row['orders']:,} | {_ms(row['app']['p50_ms'])} | {_ms(row['floor']['p50_ms'])} | {_ms(peer)} "
                f"| {row['app']['p50_ms'] / base:.2f}x |"
            )
    if results.get("writes"):
        lines += ["", "| write (batches of 500, GraphQL over HTTP) | clients | rows | rows/s |", "|---|---:|---:|---:|"]
        lines += [
            f"| {w['operation']} | {w.get('clients', 1)} | {w['rows']:,} | {w['rows_per_s']:,.0f} |"
            for w in results["writes"]
        ]
    if results.get("export"):
        lines += ["", "| CSV export | rows | rows/s | server peak RSS |", "|---|---:|---:|---:|"]
        for e in results["export"]:
            rss = f"{e['peak_rss_kb'] / 1024:.0f} MB" if e.get("peak_rss_kb") else "n/a"
            lines.append(f"| {e['export']} | {e['rows']:,} | {e['rows_per_s']:,.0f} | {rss} |")
    if results.get("import"):
        lines += [
            "",
            "| CSV import (`personagraph import-csv`) | rows | rows/s, whole command | rows/s past start-up "
            "| command peak RSS |",
            "|---|---:|---:|---:|---:|",
        ]
        for i in results["import"]:
            past = f"{i['past_startup_rows_per_s']:,.0f}" if i.get("past_startup_rows_per_s") else ""
            rss = f"{i['peak_rss_kb'] / 1024:.0f} MB"
            lines.append(f"| {i['import']} | {i['rows']:,} | {i['rows_per_s']:,.0f} | {past} | {rss} |")
    if results.get("skipped"):
        lines += ["", "Skipped:", "", *(f"- {s}" for s in results["skipped"])]
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> str | None:
    """Write the PNG; the reason when it cannot be drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (pip install matplotlib into the venv)"
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6))
    sizes = results.get("card_by_size") or []
    for name, style in (("app", "o-"), ("floor", "s--"), ("peer", "^:")):
        points = [(row["orders"], row[name]["p50_ms"]) for row in sizes if name in row]
        if points:
            left.plot(*zip(*points, strict=True), style, label=name)
    left.set_xscale("log")
    left.set_xlabel("orders of the persona")
    left.set_ylabel("full card, median ms (1 client)")
    left.set_title("Card latency against persona size (target: flat)")
    left.set_ylim(bottom=0)
    left.legend()
    ops = [op for op in results.get("operations", []) if op.get("app")]
    names = [op["name"] for op in ops]
    y = range(len(ops))
    height = 0.27
    for k, name in enumerate(("app", "floor", "peer")):
        values = [(op.get(name) or {}).get("rps_8", 0) for op in ops]
        if any(values):
            right.barh([i + (k - 1) * height for i in y], values, height=height, label=name)
    right.set_yticks(list(y), names)
    right.invert_yaxis()
    right.set_xlabel("requests/s at 8 clients (one server process)")
    right.set_title("Throughput per operation")
    right.legend()
    fig.suptitle(f"PersonaGraph benchmark, scale {results.get('scale')}, {results.get('started', '')[:16]} UTC")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write(results: dict[str, Any], directory: Path = RESULTS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / dt.datetime.now(dt.UTC).date().isoformat()
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md")]
    paths[0].write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    paths[1].write_text(markdown(results))
    png = stem.with_suffix(".png")
    problem = chart(results, png)
    if problem:
        print(problem)
    else:
        paths.append(png)
    return paths
