"""A throwaway PostgreSQL cluster for the tests, built from the machine's binaries.

``running_postgres()`` yields a SQLAlchemy URL. If ``PERSONAGRAPH_TEST_POSTGRES_URL``
is set, that URL is yielded and nothing is started. Otherwise initdb/pg_ctl run as
the ``postgres`` user when we are root (initdb refuses root), in a fresh temp folder
that is removed at exit. Failure to start raises RuntimeError with the server log
tail: never a silent skip. ``python tests/pgcluster.py`` is a smoke test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

ENV_URL = "PERSONAGRAPH_TEST_POSTGRES_URL"
DB_NAME = "personagraph_test"
ROLE = "personagraph"
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def find_bindir() -> Path:
    """Where initdb/pg_ctl are: ``pg_config --bindir``, else the newest Debian one."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        candidates.append(Path(_run([pg_config, "--bindir"]).stdout.strip()))

    def version(p: Path) -> int:
        return int(m.group(1)) if (m := re.search(r"/(\d+)/bin$", str(p))) else 0

    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(debian, key=version, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a throwaway cluster and yield ``postgresql+psycopg://ROLE@127.0.0.1:PORT/DB``."""
    if url := os.environ.get(ENV_URL):
        yield url
        return
    with started_cluster() as cluster:
        yield cluster.url


class Cluster:
    """A cluster this process started: its URL, and stop/start for fault tests
    (the data folder and port stay, so the same URL works again after start)."""

    def __init__(self, bindir: Path, root: Path, as_pg: list[str]) -> None:
        self.bindir, self.root, self.as_pg = bindir, root, as_pg
        self.data, self.log = root / "data", root / "server.log"
        self.url = ""

    def run(self, *cmd: str) -> None:
        r = _run([*self.as_pg, *cmd], cwd=self.root)
        if r.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}\n"
                f"--- server log tail ---\n{_tail(self.log)}"
            )

    def start(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log))

    def stop(self, mode: str = "fast") -> None:
        self.run(str(self.bindir / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data))


@contextlib.contextmanager
def started_cluster() -> Iterator[Cluster]:
    """Start a throwaway cluster from the machine's binaries; removed at exit."""
    bindir = find_bindir()
    as_pg: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="personagraph-pg-"))
    cluster = Cluster(bindir, root, as_pg)
    try:
        if os.geteuid() == 0:
            try:
                pg_user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, but no 'postgres' user") from None
            os.chown(root, pg_user.pw_uid, pg_user.pw_gid)
            as_pg.extend(["runuser", "-u", "postgres", "--"])
        initdb_opts = ["-U", ROLE, "--auth=trust", "-E", "UTF8", "--locale=C"]
        cluster.run(str(bindir / "initdb"), "-D", str(cluster.data), *initdb_opts, "--no-sync")
        port = _free_port()
        conf = {**SETTINGS, "port": str(port), "unix_socket_directories": f"'{root}'"}
        with (cluster.data / "postgresql.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        cluster.start()
        cluster.run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, DB_NAME)
        cluster.url = f"postgresql+psycopg://{ROLE}@127.0.0.1:{port}/{DB_NAME}"
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            stop = [str(bindir / "pg_ctl"), "stop", "-m", "immediate", "-D", str(cluster.data)]
            _run([*as_pg, *stop], cwd=root)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    import time

    import psycopg

    t0 = time.monotonic()
    with running_postgres() as sa_url:
        started = time.monotonic() - t0
        with psycopg.connect(sa_url.replace("+psycopg", ""), autocommit=True) as conn:
            row = conn.execute("select version()").fetchone()
            conn.execute("create extension if not exists pg_trgm")
        print(row[0] if row else "?")
        print(f"started in {started:.2f}s at {sa_url}; pg_trgm ok")
