"""The benchmark's PostgreSQL: an existing server, or one started here.

    PERSONAGRAPH_BENCH_DATABASE_URL=postgresql://...   use that server as it is
    --keep-db DIR                                     a cluster kept in DIR between runs
                                                      (generated data is reused)
    (neither)                                         a throwaway cluster, removed at exit

The cluster is built from the machine's binaries exactly as the tests build
theirs (tests/pgcluster.py: initdb as the postgres user when root, trust auth,
loopback only, fsync off), plus settings that suit a read benchmark: a larger
shared_buffers, and no JIT (it only adds compile time to short queries).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.pgcluster import DB_NAME, ROLE, SETTINGS, _free_port, _run, _tail, find_bindir

ENV_URL = "PERSONAGRAPH_BENCH_DATABASE_URL"
BENCH_SETTINGS = {
    **SETTINGS,
    "shared_buffers": "'1GB'",
    "work_mem": "'16MB'",
    "maintenance_work_mem": "'256MB'",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'30min'",
    "jit": "off",
}


def sqlalchemy_url(url: str) -> str:
    """The URL as the app's settings want it (psycopg 3 through SQLAlchemy)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url[:30]}...")


def libpq_url(url: str) -> str:
    """The URL as psycopg, node-postgres and psql want it."""
    return "postgresql://" + sqlalchemy_url(url).split("://", 1)[1]


@contextlib.contextmanager
def bench_postgres(keep_dir: Path | None = None) -> Iterator[str]:
    """Yield a libpq URL of a running server; stop what was started here at exit."""
    if url := os.environ.get(ENV_URL):
        yield libpq_url(url)
        return
    bindir = find_bindir()
    root = keep_dir.resolve() if keep_dir else Path(tempfile.mkdtemp(prefix="personagraph-bench-pg-"))
    root.mkdir(parents=True, exist_ok=True)
    data, log = root / "data", root / "server.log"
    as_pg: list[str] = []
    if os.geteuid() == 0:
        pg_user = pwd.getpwnam("postgres")
        os.chown(root, pg_user.pw_uid, pg_user.pw_gid)
        as_pg = ["runuser", "-u", "postgres", "--"]

    def run(*cmd: str) -> None:
        r = _run([*as_pg, *cmd], cwd=root)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}\n--- server log ---\n{_tail(log)}")

    fresh = not (data / "PG_VERSION").exists()
    try:
        if fresh:
            run(str(bindir / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8", "--locale=C")
        port = _free_port()
        conf = {**BENCH_SETTINGS, "port": str(port), "unix_socket_directories": f"'{root}'"}
        # postgresql.auto.conf is read last: rewriting it each start sets the new port.
        (data / "postgresql.auto.conf").write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        if as_pg:
            shutil.chown(data / "postgresql.auto.conf", "postgres", "postgres")
        run(str(bindir / "pg_ctl"), "start", "-w", "-t", "120", "-D", str(data), "-l", str(log))
        if fresh:
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, DB_NAME)
        yield f"postgresql://{ROLE}@127.0.0.1:{port}/{DB_NAME}"
    finally:
        if (data / "postmaster.pid").exists():
            mode = "fast" if keep_dir else "immediate"
            _run([*as_pg, str(bindir / "pg_ctl"), "stop", "-m", mode, "-D", str(data)], cwd=root)
        if keep_dir is None:
            shutil.rmtree(root, ignore_errors=True)
