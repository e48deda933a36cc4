"""The servers the harness measures, each its own process on loopback:
the app (uvicorn, one process), the floor (uvicorn, one process) and the peer
(PostGraphile on Node), started and stopped here."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.cluster import sqlalchemy_url

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = Path(__file__).resolve().parent / "peer"
LOGS = ROOT / "var" / "bench-logs"


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    pid: int
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); log tail:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {seconds}s; log tail:\n{log.read_text()[-2000:]}")


@contextlib.contextmanager
def _process(name: str, cmd: list[str], env: dict[str, str], port: int, cwd: Path, wait: float) -> Iterator[Server]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(port, proc, log, wait)
        yield Server(name, port, proc.pid, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _uvicorn(target: str, port: int, *, factory: bool) -> list[str]:
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    return [*cmd, *(["--factory"] if factory else []), "--no-access-log", "--log-level", "warning"]


def app_server(
    url: str, extra_env: dict[str, str] | None = None, factory: str = "app:create_app"
) -> contextlib.AbstractContextManager[Server]:
    """The app as `personagraph serve` runs it, with the cost bucket out of the way of a load test.

    `extra_env` sets more of the app's settings (e.g. DB_POOL_SIZE) and `factory` names
    another app factory (bench/experiments.py), for an experiment."""
    port = free_port()
    env = {
        "DATABASE_URL": sqlalchemy_url(url),
        "COST_BUCKET_SIZE": str(10**12),
        "COST_RESTORE_RATE": str(10**12),
        # Batches of 500 writes can outlast the default 10 s request timeout: measure them instead of cutting them.
        "REQUEST_TIMEOUT_SECONDS": "300",
        "PERSONAGRAPH_ENV": "development",
        **(extra_env or {}),
    }
    return _process("app", _uvicorn(factory, port, factory=True), env, port, ROOT, 60)


def floor_server(url: str, org_id: str) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    env = {"BENCH_FLOOR_DATABASE_URL": url, "BENCH_FLOOR_ORG_ID": org_id}
    return _process("floor", _uvicorn("bench.floor:app", port, factory=False), env, port, ROOT, 60)


def peer_available() -> str | None:
    """Why the peer cannot run here, or None when it can."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not found: the PostGraphile peer is skipped"
    return None


def install_peer() -> None:
    """npm ci in bench/peer (the lock pins PostGraphile); a no-op when installed."""
    if (PEER_DIR / "node_modules" / "postgraphile" / "package.json").exists():
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True, capture_output=True)


def peer_version() -> str:
    import json

    return str(json.loads((PEER_DIR / "node_modules" / "postgraphile" / "package.json").read_text())["version"])


def peer_server(url: str) -> contextlib.AbstractContextManager[Server]:
    """PostGraphile v5 (Amber preset) on Node; Node < 22 gets the Promise.withResolvers shim."""
    port = free_port()
    env = {"DATABASE_URL": url, "PORT": str(port), "GRAPHILE_ENV": "production", "NODE_ENV": "production"}
    cli = str(PEER_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js")
    cmd = ["node", "--import", "./with-resolvers.mjs", cli, "-C", "graphile.config.mjs"]
    return _process("peer", cmd, env, port, PEER_DIR, 120)


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Start a new peak-RSS window (Linux: clear_refs 5); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
