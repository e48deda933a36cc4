"""The machinery of the execution-parity tests (tests/test_execution_parity_*.py):
the fast paths must answer every request exactly as the reference path does.

Two apps over the same database: the reference (`fast_execution` and `coalesce_reads`
off: graphql-core runs every field, each read goes alone) and the fast one (both on).
A test sends the same request over HTTP to both (`assert_same_answer`); the status, the
media type and the whole body must be the same, byte for byte, after `normalise` (which
only touches values that differ from call to call by design).

`world` is a module-scoped fixture: the data of tests/execution_parity_world.py, built
once per backend for each test module that registers it (``world =
execution_parity_support.world``, after ``from tests import execution_parity_support``),
and the two apps over it. Also here: the registered operations (operations/*.graphql)
and the three documents more than one module sends (the card, the header, the History tab).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from app import create_app
from database import Database
from resolvers.links import read_persona_token
from settings import Settings
from tests.execution_parity_world import build_world

OPERATIONS = Path(__file__).resolve().parent.parent / "operations"


# ---------------------------------------------------------------- the two apps


def database_for(db: Database, settings: Settings) -> Database:
    """The test database as an app with these settings opens it (sharing the engine).

    The one place that knows how the database learns the coalesce flag: as the
    `coalesce_reads` argument of `Database` when it takes one (database.py in the
    working tree does; the committed one did not), else from the settings alone.
    """
    options: dict[str, Any] = {"reads_per_request": settings.db_reads_per_request}
    if "coalesce_reads" in inspect.signature(Database).parameters:
        options["coalesce_reads"] = settings.coalesce_reads
    return Database(db.engine, **options)


@dataclass
class App:
    """One of the two apps, with what `normalise` needs to know about its answers."""

    name: str
    settings: Settings
    http: httpx.AsyncClient
    # The bucket level each key's last answer showed (extensions.cost.throttleStatus).
    levels: dict[str, int] = field(default_factory=dict)


@dataclass
class Answer:
    status: int
    media_type: str
    text: str  # the body, normalised

    def pretty(self) -> str:
        """The body indented, keys in the order sent (json keeps it, and keeps 1 and 1.0 apart)."""
        try:
            return json.dumps(json.loads(self.text), indent=1, ensure_ascii=False)
        except ValueError:
            return self.text


# ---------------------------------------------------------------- what may differ between two calls

# itsdangerous's URLSafeTimedSerializer: payload.timestamp.signature (a payload starting
# with "." is compressed), all URL-safe base64.
TOKEN = re.compile(r"^(\.?[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _signed_token(settings: Settings, value: str) -> tuple[str, str] | None:
    """(token, payload) when the string is a wallet/referral link or a pixel token signed by this app."""
    for purpose, prefix in (
        ("wallet", f"{settings.public_base_url}/wallet/"),
        ("referral", f"{settings.public_base_url}/r/"),
        ("pixel", ""),
    ):
        token = value.removeprefix(prefix) if prefix else value
        if (prefix and token == value) or not (match := TOKEN.match(token)):
            continue
        if read_persona_token(settings, token, purpose) is not None:
            return token, match.group(1)
    return None


def normalise(app: App, key: str, raw: str) -> str:
    """The answer's text with the values that legitimately differ between two calls
    replaced, and nothing else touched (the replacements are made in the raw text, so
    key order, number spelling and every other byte are still compared):

    - Signed link tokens (links.wallet, links.referral, links.pixelToken): itsdangerous
      tokens are `payload.timestamp.signature`; the timestamp is the second the token
      was made and the signature covers it, so two calls a second apart differ there.
      Only a string that verifies as a token of its purpose under the app's secret is
      touched, and only its timestamp and signature: the payload (organization and
      persona) is still compared, and a token the fast path signed wrongly is no token.
    - extensions.cost.throttleStatus.currentlyAvailable: the level of the key's bucket,
      which holds what every earlier request of the key took from this app's bucket
      (the apps have a bucket each, and refill by the clock is off: cost_restore_rate=0).
      It becomes what this request took (the drop since the key's last answer).
    - extensions.errorId of a masked INTERNAL_SERVER_ERROR: a fresh random id per call.
    """
    try:
        body = json.loads(raw)
    except ValueError:
        return raw
    text = raw
    for value in set(_strings(body)):
        if signed := _signed_token(app.settings, value):
            token, payload = signed
            text = text.replace(token, f"{payload}.<timestamp>.<signature>")
    if isinstance(body, dict):
        cost = (body.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") if isinstance(cost, dict) else None
        if isinstance(status, dict) and isinstance(status.get("currentlyAvailable"), int):
            level = status["currentlyAvailable"]
            took = app.levels.get(key, status["maximumAvailable"]) - level
            app.levels[key] = level
            text = re.sub(rf'("currentlyAvailable"\s*:\s*){level}\b', rf'\g<1>"{took} less than before"', text)
        for error in body.get("errors") or []:
            error_id = (error.get("extensions") or {}).get("errorId") if isinstance(error, dict) else None
            if isinstance(error_id, str):
                text = text.replace(f'"{error_id}"', '"<random>"')
    return text


# ---------------------------------------------------------------- the data and the two apps over it


@dataclass
class World:
    reference: App
    fast: App
    keys: dict[str, str]  # role (or RIVAL_OWNER) -> API key
    ids: dict[str, str]  # what -> global id
    numbers: dict[str, int]  # persona -> number


@pytest.fixture(scope="module")
async def world(session_db: Database, settings: Settings) -> AsyncIterator[World]:
    """The data, built once per backend, and the two apps over it."""
    keys, ids, numbers = await build_world(session_db)
    # No refill by the clock, so a bucket's level moves only by what requests take (see normalise).
    base = dataclasses.replace(settings, cost_restore_rate=0)
    apps = []
    for name, fast in (("reference", False), ("fast", True)):
        app_settings = dataclasses.replace(base, fast_execution=fast, coalesce_reads=fast)
        app = create_app(app_settings, database=database_for(session_db, app_settings))
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        apps.append(App(name=name, settings=app_settings, http=http))
    yield World(reference=apps[0], fast=apps[1], keys=keys, ids=ids, numbers=numbers)
    for made in apps:
        await made.http.aclose()


# ---------------------------------------------------------------- asking both


async def ask(app: App, key: str, method: str, payload: dict[str, Any]) -> Answer:
    headers = {"Authorization": f"Bearer {key}"}
    if method == "GET":
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
        response = await app.http.get("/graphql", params=params, headers=headers)
    else:
        response = await app.http.post("/graphql", json=payload, headers=headers)
    return Answer(response.status_code, response.headers.get("content-type", ""), normalise(app, key, response.text))


def _diff(reference: str, fast: str) -> str:
    lines = difflib.unified_diff(reference.splitlines(), fast.splitlines(), "reference", "fast", lineterm="", n=2)
    shown = list(lines)
    return "\n".join(shown[:80] + ([f"... {len(shown) - 80} more lines"] if len(shown) > 80 else []))


async def assert_same_answer(world: World, who: str, payload: dict[str, Any], method: str = "POST") -> Answer:
    """Both apps' answers to the same request; fails with a diff when they differ in any byte."""
    key = world.keys[who]
    reference = await ask(world.reference, key, method, payload)
    fast = await ask(world.fast, key, method, payload)
    assert (fast.status, fast.media_type) == (reference.status, reference.media_type), _diff(
        reference.pretty(), fast.pretty()
    )
    assert fast.pretty() == reference.pretty(), _diff(reference.pretty(), fast.pretty())
    assert fast.text == reference.text, "same JSON, but not the same bytes (escaping or spacing)"
    return reference


def resolve(variables: dict[str, Any], world: World) -> dict[str, Any]:
    """The variables with "@name" replaced by that global id and "#name" by that persona's number."""
    resolved: dict[str, Any] = {}
    for name, value in variables.items():
        if isinstance(value, str) and value.startswith("@"):
            resolved[name] = world.ids[value[1:]]
        elif isinstance(value, str) and value.startswith("#"):
            resolved[name] = world.numbers[value[1:]]
        else:
            resolved[name] = value
    return resolved


# ---------------------------------------------------------------- the registered operations


def _operations() -> list[tuple[str, str, str, set[str]]]:
    """(file stem, operation name, document, variable names) of every operation in operations/."""
    found = []
    for path in sorted(OPERATIONS.glob("*.graphql")):
        text = path.read_text()
        for definition in parse(text).definitions:
            if isinstance(definition, OperationDefinitionNode):
                assert definition.name is not None, f"{path.name}: every registered operation is named"
                variables = {v.variable.name.value for v in definition.variable_definitions or ()}
                found.append((path.stem, definition.name.value, text, variables))
    return found


OPERATION_LIST = _operations()
DOCUMENTS = {(stem, name): text for stem, name, text, _ in OPERATION_LIST}
# Sent by more than one module: persisted-query variants, ad-hoc documents, bad requests.
CARD = DOCUMENTS["card", "PersonaCard"]
HEADER = DOCUMENTS["header", "PersonaHeader"]
HISTORY = DOCUMENTS["history", "PersonaHistoryTab"]
