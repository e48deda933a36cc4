"""GraphQL over HTTP: graphql-http's server audit (the spec's own suite, in
Node) against a live uvicorn, with a key. `make install` runs `npm ci` in
tests/http_audit; a missing install is a failure, not a skip."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

from database import Database
from settings import Settings
from tests.hardening import key_for, new_org
from tests.live_server import live_server

AUDIT = Path(__file__).resolve().parent / "http_audit"


async def test_graphql_http_audit_reports_no_error_and_no_warning(session_db: Database, settings: Settings) -> None:
    # Given the audit's dependencies (make install) and a live server with a key
    node = shutil.which("node")
    assert node, "node is missing: install Node.js 18+ (Debian's nodejs)"
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), "run `make install` (npm ci in tests/http_audit)"
    key = await key_for(session_db, await new_org(session_db))
    with live_server(settings) as live:
        # When graphql-http's serverAudits run against /graphql
        done = await asyncio.to_thread(
            subprocess.run,
            [node, str(AUDIT / "audit.mjs"), live.graphql, key],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    # Then every audit passes: 0 errors and 0 warnings
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    assert report["problems"] == [], json.dumps(report["problems"], indent=2)
    assert report["error"] == 0
    assert report["warn"] == 0
    assert report["ok"] > 40
    assert done.returncode == 0, done.stderr
