"""The personagraph command line, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "import cli; cli.main()"]


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)


def test_exported_schema_matches_the_committed_file() -> None:
    from schema import schema

    committed = (ROOT / "schema.graphql").read_text()
    assert schema.as_str() + "\n" == committed, (
        "schema.graphql is stale: run `personagraph export-schema > schema.graphql`"
    )


def test_committed_schema_keeps_the_contract() -> None:
    checker = ROOT.parent / "shared" / "contract" / "check_contract.py"
    result = subprocess.run(
        [sys.executable, str(checker), str(ROOT / "schema.graphql")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.usefixtures("db")
def test_create_org_then_key_prints_the_key_alone_on_the_last_line(settings: Settings) -> None:
    made = run(settings, "create-org", "--slug", "green-leaf", "--name", "Green Leaf")
    assert made.returncode == 0, made.stderr
    key = run(settings, "create-key", "--org", "green-leaf", "--role", "staff", "--name", "till 1")
    assert key.returncode == 0, key.stderr
    last = key.stdout.strip().splitlines()[-1]
    assert last.startswith("pgk_")
    assert " " not in last
    listed = run(settings, "list-keys", "--org", "green-leaf")
    prefix = last.split("_")[1]
    assert prefix in listed.stdout
    assert "STAFF" in listed.stdout
    assert last not in listed.stdout
    revoked = run(settings, "revoke-key", "--prefix", prefix)
    assert revoked.returncode == 0
    assert "revoked" in revoked.stdout


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize(
    "args",
    [
        ("create-key", "--org", "nope", "--role", "staff", "--name", "x"),
        ("create-org", "--slug", "Bad Slug!", "--name", "x"),
        ("create-key", "--org", "acme"),
        ("frobnicate",),
        ("seed-demo", "--personas", "many"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(settings: Settings, args: tuple[str, ...]) -> None:
    result = run(settings, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
