"""What `make run` does, end to end: migrate an empty database, seed demo
data, print a key per role and serve, on a real uvicorn; then again, reusing
everything and still printing working keys."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from permissions.matrix import Role

ROOT = Path(__file__).resolve().parent.parent
KEY_LINE = re.compile(r"^\s+([A-Z_]+)\s+(pgk_\S+)$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_and_read_keys(env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        # The console script `make run` starts: it imports the project's modules as installed, not from
        # the working directory (a top-level module left out of pyproject.toml breaks it, not `python -c`).
        [str(Path(sys.executable).with_name("personagraph")), "dev", "--personas", "12", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    keys: dict[str, str] = {}
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if match := KEY_LINE.match(line.rstrip("\n")):
            keys[match.group(1)] = match.group(2)
        if len(keys) == len(Role) or time.monotonic() > deadline:
            break
    return process, keys


def _viewer_answers(port: int, keys: dict[str, str]) -> dict[str, str]:
    url = f"http://127.0.0.1:{port}/graphql"
    for _ in range(100):  # uvicorn starts right after the keys are printed
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    roles = {}
    for role, key in keys.items():
        response = httpx.post(
            url,
            json={"query": "{ viewer { role organization { name } } }"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        viewer = response.json()["data"]["viewer"]
        assert viewer["organization"]["name"] == "Demo Dispensary"
        roles[role] = viewer["role"]
    return roles


def test_dev_server_prints_working_keys_for_every_role_twice(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PERSONAGRAPH_DEV_KEYS": str(tmp_path / "dev-keys.json"),
    }
    first_keys: dict[str, str] = {}
    for attempt in range(2):
        port = _free_port()
        process, keys = _serve_and_read_keys(env, port)
        try:
            assert set(keys) == {r.value for r in Role}
            assert _viewer_answers(port, keys) == {r: r for r in keys}
            graphiql = httpx.get(f"http://127.0.0.1:{port}/graphql", headers={"Accept": "text/html"}, timeout=10)
            assert graphiql.status_code == 200
            assert "graphiql" in graphiql.text.lower()
        finally:
            process.terminate()
            process.communicate(timeout=20)
        if attempt == 0:
            first_keys = keys
        else:
            assert keys == first_keys  # reused, and still working
