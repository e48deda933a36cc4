"""schemathesis fuzzes /graphql on a live uvicorn, once per role with that
role's key, from the exported schema: no 5xx, no masked unexpected error
(INTERNAL_SERVER_ERROR) and no response that breaks the schema.

The example count per operation is bounded (PERSONAGRAPH_FUZZ_EXAMPLES,
default 2) to keep `make test` short; raise it for a deeper run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.graphql import nodes

from database import Database
from permissions.matrix import Role
from schema import schema as served
from settings import Settings
from tests.factories import make_persona
from tests.hardening import key_for, new_org
from tests.live_server import Live, live_server

EXAMPLES = int(os.environ.get("PERSONAGRAPH_FUZZ_EXAMPLES", "2"))


def _string(value: object) -> Any:
    return nodes.String(value.isoformat() if isinstance(value, dt.date) else str(value))


# Our custom scalars, as a client would write them.
schemathesis.graphql.scalar(
    "Decimal", st.decimals(min_value=Decimal(-(10**6)), max_value=Decimal(10**6), places=2).map(_string)
)
schemathesis.graphql.scalar("Date", st.dates().map(_string))
schemathesis.graphql.scalar("DateTime", st.datetimes(timezones=st.just(dt.UTC)).map(_string))


@dataclass(frozen=True)
class Target:
    live: Live
    keys: dict[Role, str]
    schema_file: Path


@pytest.fixture(scope="module")
async def target(
    session_db: Database, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    # An organization with a persona, a key per role, and the exported schema
    org = await new_org(session_db)
    await make_persona(session_db, org, email="fuzz@example.com", phone="415-555-0142")
    keys = {role: await key_for(session_db, org, role) for role in Role}
    schema_file = tmp_path_factory.mktemp("fuzz") / "schema.graphql"
    schema_file.write_text(served.as_str())
    with live_server(settings) as live:
        yield Target(live, keys, schema_file)


def _examples(operation: Any) -> list[Any]:
    found: list[Any] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def collect(case: Any) -> None:
        found.append(case)

    collect()
    return found


@functools.cache
def generated(schema_text: str) -> list[Any]:
    """The cases, generated once (generation is the slow part) and replayed with every role's key."""
    with tempfile.TemporaryDirectory() as folder:
        schema_file = Path(folder) / "schema.graphql"
        schema_file.write_text(schema_text)
        schema = schemathesis.graphql.from_path(schema_file)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the exported schema always loads
        operations.append(result.ok())
    assert len(operations) > 20
    return [case for operation in operations for case in _examples(operation)]


def fuzz(target: Target, role: Role) -> list[str]:
    """Every failure found, as text; empty when the server held."""
    failures: list[str] = []
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {target.keys[role]}"
        for case in generated(target.schema_file.read_text()):
            operation = case.operation
            response = case.call(base_url=target.live.graphql, session=session, timeout=15)
            where = f"{operation.label} {case.body!r}"
            if response.status_code >= 500:
                failures.append(f"{response.status_code} from {where}: {response.text[:300]}")
                continue
            # Malformed JSON, a body that is not a GraphQL response, null in a non-null field
            try:
                operation.schema.validate_response(operation, response, case=case)
            except Exception as violation:  # schemathesis' failure types
                failures.append(f"schema violation from {where}: {violation}")
                continue
            for error in response.json().get("errors") or []:
                if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR":
                    failures.append(f"unexpected error from {where}: {error}")
    return failures


@pytest.mark.slow
@pytest.mark.parametrize("role", list(Role))
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(target: Target, role: Role) -> None:
    failures = await asyncio.to_thread(fuzz, target, role)
    assert failures == [], "\n".join(failures)
