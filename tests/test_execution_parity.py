"""Differential test: the fast paths answer every request exactly as the reference path does.

Two apps over the same database: the reference (`fast_execution` and `coalesce_reads`
off: graphql-core runs every field, each read goes alone) and the fast one (both on).
Every registered operation (operations/*.graphql) for every role and every kind of
persona (and historyFirst 0, 1, 3, 10 and left out, where the operation has it), a set
of ad-hoc documents that exercise what a compiled executor must get right, bad ids,
persisted queries and bad requests go over HTTP to both; the status, the media type and
the whole body must be the same, byte for byte, after `normalise` (which only touches
values that differ from call to call by design).

The data is built once per backend through the write paths the API uses, under two
organizations of this module's own (nothing else is emptied or read).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import inspect
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse, print_ast
from sqlalchemy import update
from sqlmodel import col

from app import create_app
from database import Database
from models import Discount, Organization, Persona, SignupSubmission, Store
from models.enums import MergeKind, PointsEntryKind, PrivacyAction
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.audiences import save_audience
from resolvers.discounts import redeem
from resolvers.events import EventData, EventKind, record_events
from resolvers.ingest import ConsentData, ContactData, ingest_one
from resolvers.links import read_persona_token
from resolvers.merges import merge_personas
from resolvers.orders import LineData, OrderData, OrderOutcome, record_order
from resolvers.organizations import create_organization
from resolvers.points import post_entry
from resolvers.points_actions import reverse_redemption
from resolvers.privacy import normalize_contact, request_privacy_action
from resolvers.profile import archive_persona
from schema.ids import to_global_id
from settings import Settings
from tests.factories import MadePersona, days_ago, make_persona

OPERATIONS = Path(__file__).resolve().parent.parent / "operations"
HISTORY_FIRST = [0, 1, 3, 10]
# The personas every operation is read for (see `build_world`).
PERSONAS = ["full", "merged", "archived", "erased", "empty", "long", "rival"]
RIVAL_OWNER = "RIVAL_OWNER"  # the other organization's owner, for its own persona


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


# ---------------------------------------------------------------- the data


@dataclass
class World:
    reference: App
    fast: App
    keys: dict[str, str]  # role (or RIVAL_OWNER) -> API key
    ids: dict[str, str]  # what -> global id
    numbers: dict[str, int]  # persona -> number


PHONES = {
    "full": "(415) 555-0134",
    "merged": "(415) 555-0199",
    "archived": "(415) 555-0142",
    "erased": "(415) 555-0177",
    "long": "(646) 783-0134",
}


async def _org(db: Database, name: str) -> Organization:
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug=f"parity-{uuid.uuid4().hex[:12]}", name=name)
        org.points_per_dollar_milli = 1500
        org.points_per_order = 5
        org.show_pin_in_wallets = True
        org.referral_points_enabled = True
        org.referral_points = 50
        org.points_expire_after_days = 365
        return org


async def _stores_discounts_audience(db: Database, org: Organization) -> dict[str, Any]:
    async with db.session() as session, session.begin():
        stores = [Store(org_id=org.id, name="Mission St"), Store(org_id=org.id, name="Valencia St")]
        discounts = [
            Discount(org_id=org.id, name="$5 off", points_cost=100),
            Discount(org_id=org.id, name="Free pre-roll", points_cost=150),
            Discount(org_id=org.id, name="Big one", points_cost=5000),
            Discount(org_id=org.id, name="Expired", points_cost=10, ends_at=days_ago(1)),
            Discount(org_id=org.id, name="Later", points_cost=10, starts_at=days_ago(-3)),
            Discount(org_id=org.id, name="This week", points_cost=400, starts_at=days_ago(2), ends_at=days_ago(-5)),
        ]
        session.add_all([*stores, *discounts])
        await session.flush()
        await save_audience(
            session, org.id, audience_id=None, name="VIPs", query="tag:vip", points_multiplier=Decimal("1.5")
        )
        return {"stores": stores, "discounts": discounts}


async def _orders(
    db: Database,
    org: Organization,
    phone: str,
    count: int,
    *,
    start_days: float,
    store: Store | None = None,
    referred_by: int | None = None,
) -> None:
    """`count` orders of the customer with this phone, a day apart, the newest `start_days` ago."""
    catalog = [
        ("Gary Payton 3.5g", "Cookies", "Flower", 1, "45.00"),
        ("Camino Gummies", "Kiva", "Edibles", 2, "20.00"),
        ("Badder 1g", None, "Concentrates", 1, "40.00"),
        ("Pod 1g", "Stiiizy", "Vapes", 3, "40.00"),
    ]
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        for n in range(count):
            picked = [catalog[n % 4], catalog[(n + 1) % 4]] if n % 3 else [catalog[n % 4]]
            lines = [LineData(p, q, Decimal(u), b, c) for p, b, c, q, u in picked]
            subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
            tax = (subtotal * Decimal("0.15")).quantize(Decimal("0.01"))
            data = OrderData(
                external_id=f"{phone}-{n}",
                source="test-pos",
                customer=ContactData(phone=phone),
                placed_at=days_ago(start_days + count - 1 - n + 0.25),
                subtotal=subtotal,
                tax=tax,
                total=subtotal + tax,
                lines=lines,
                store_id=store.id if store is not None and n % 2 == 0 else None,
                referred_by_number=referred_by if n == 0 else None,
            )
            result = await record_order(session, loaded, data, actor="test", path=["order"])
            assert result.outcome is OrderOutcome.RECORDED, [e.message for e in result.errors]


async def _events(
    db: Database, org: Organization, persona: MadePersona, start_days: float, messages: int, others: int
) -> None:
    """`messages` messages and `others` events of each other engagement kind (surveys with an
    unanswered question), a day apart, through recordEvents."""
    events: list[EventData] = []
    for n in range(max(messages, others)):
        at = days_ago(start_days + n + 0.5)
        common: dict[str, Any] = {"source": "test-crm", "occurred_at": at, "persona_number": persona.number}
        if n < messages:
            events.append(
                EventData(
                    external_id=f"m-{persona.number}-{n}",
                    kind=EventKind.MESSAGE,
                    direction="OUTBOUND" if n % 2 == 0 else "INBOUND",
                    channel="SMS" if n % 3 else "EMAIL",
                    body=f"Hello {n}",
                    campaign="Spring" if n % 2 == 0 else None,
                    **common,
                )
            )
        if n >= others:
            continue
        events += [
            EventData(
                external_id=f"s-{persona.number}-{n}",
                kind=EventKind.SURVEY,
                survey_name="NPS",
                survey_status="PARTIAL" if n % 2 == 0 else "COMPLETE",
                answers=[("How likely?", str(n % 10)), ("Why?", None)],
                **common,
            ),
            EventData(
                external_id=f"a-{persona.number}-{n}",
                kind=EventKind.ACTION,
                action_kind="CLICKED" if n % 2 == 0 else "OPENED",
                campaign="Spring",
                detail=f"link {n}" if n % 2 == 0 else None,
                **common,
            ),
            EventData(
                external_id=f"p-{persona.number}-{n}",
                kind=EventKind.PIXEL,
                site="shop.example.com",
                event="page_view",
                url=f"https://shop.example.com/p/{n}",
                **common,
            ),
        ]
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        results = await record_events(session, loaded, events, path=["events"])
    assert all(r.outcome.value == "RECORDED" for r in results), [e.message for r in results for e in r.errors]


async def _ledger(db: Database, org: Organization, persona: MadePersona, discounts: list[Discount]) -> None:
    """Gifts, an adjustment, a collectible, an expiry, a redemption and a reversed one."""
    async with db.session() as session, session.begin():
        for kind, delta, note in (
            (PointsEntryKind.CAMPAIGN_GIFT, 400, "spring gift"),
            (PointsEntryKind.FLOW_GIFT, 12, None),
            (PointsEntryKind.STAFF_ADJUSTMENT, -15, "typo on ticket"),
            (PointsEntryKind.COLLECTIBLE, 7, None),
            (PointsEntryKind.EXPIRATION, -10, "expired"),
        ):
            await post_entry(session, org_id=org.id, persona_id=persona.id, kind=kind, delta=delta, note=note)
        await redeem(session, org_id=org.id, persona_id=persona.id, discount=discounts[0], actor="test")
        reversed_one = await redeem(session, org_id=org.id, persona_id=persona.id, discount=discounts[1], actor="x")
        await reverse_redemption(session, org_id=org.id, redemption_id=reversed_one.id, note="wrong one", actor="x")


async def _signups(db: Database, org: Organization, persona: MadePersona) -> None:
    async with db.session() as session, session.begin():
        session.add_all(
            [
                SignupSubmission(
                    org_id=org.id,
                    persona_id=persona.id,
                    form_name="In-store tablet",
                    url="https://shop.example.com/join",
                    ip_address="203.0.113.7",
                    user_agent="Mozilla/5.0 (test)",
                    signature="data:image/png;base64,iVBORw0KGgo=",
                    submitted_at=days_ago(240.5),
                ),
                SignupSubmission(
                    org_id=org.id,
                    persona_id=persona.id,
                    form_name="Website",
                    url="https://shop.example.com/join?utm=x",
                    submitted_at=days_ago(30.5),
                ),
            ]
        )


async def _merge(db: Database, org: Organization, survivor: MadePersona, merged: MadePersona) -> None:
    async with db.session() as session, session.begin():
        kept = await session.get(Persona, (org.id, survivor.id))
        gone = await session.get(Persona, (org.id, merged.id))
        assert kept is not None
        assert gone is not None
        await merge_personas(
            session, org_id=org.id, survivor=kept, merged=gone, kind=MergeKind.MANUAL, reason="same card", actor="x"
        )


async def build_world(db: Database) -> tuple[dict[str, str], dict[str, str], dict[str, int]]:
    """Keys, global ids and persona numbers of the data every comparison reads."""
    org = await _org(db, "Parity Cannabis Co.")
    rival_org = await _org(db, "Rival Dispensary")
    made = await _stores_discounts_audience(db, org)
    stores: list[Store] = made["stores"]
    discounts: list[Discount] = made["discounts"]
    keys: dict[str, str] = {}
    async with db.session() as session, session.begin():
        for role in Role:
            keys[role.value] = (await issue_key(session, org_id=org.id, role=role, name=f"parity {role}")).plaintext
        keys[RIVAL_OWNER] = (
            await issue_key(session, org_id=rival_org.id, role=Role.OWNER, name="parity rival")
        ).plaintext

    # More history than a page: 21 orders (over 40 ledger entries) and messages, more than the
    # card's largest page (10) but less than the History tab's (20) of the other engagement kinds.
    long = await make_persona(
        db, org, first_name="Fay", phone=PHONES["long"], loyalty_member=True, loyalty_signup_at=days_ago(500)
    )
    await _orders(db, org, PHONES["long"], 21, start_days=1, store=stores[1])
    await _events(db, org, long, 1, messages=21, others=11)
    async with db.session() as session, session.begin():
        for _ in range(3):
            await redeem(session, org_id=org.id, persona_id=long.id, discount=discounts[0], actor="test")

    # Every tab filled.
    full = await make_persona(
        db,
        org,
        first_name="Ann",
        last_name="Lee",
        phone=PHONES["full"],
        email="ann@example.com",
        birthday=dt.date(1990, 4, 20),
        source_id="pos-17",
        favorite_store_id=stores[0].id,
        loyalty_member=True,
        loyalty_signup_at=days_ago(250.5),
        attributes=[("budtender", "Sam"), ("medical", "yes")],
        tags=["vip", "veteran"],
        consents=[
            ConsentData("TEXT", "OPTED_OUT", "INTEGRATION"),
            ConsentData("EMAIL", "OPTED_IN", "IMPORT"),
            ConsentData("LOYALTY", "OPTED_IN", "INTEGRATION"),
        ],
        legacy_points=120,
    )
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        signup = ContactData(phone=PHONES["full"], browser="Mozilla/5.0 (test)", ip_address="203.0.113.7")
        await ingest_one(session, loaded, "LOYALTY", signup, actor="loyalty sign-up form", path=[])
        await session.execute(
            update(Persona).where(col(Persona.org_id) == org.id, col(Persona.id) == full.id).values(wallet_pin="4217")
        )
    await _orders(db, org, PHONES["full"], 5, start_days=3, store=stores[0], referred_by=long.number)
    await _ledger(db, org, full, discounts)
    await _events(db, org, full, 2, messages=2, others=2)
    await _signups(db, org, full)

    # Merged away: `twice` into `merged` by hand, then `merged` into `full` by an
    # ingest that matched both (the older survives).
    merged = await make_persona(
        db, org, first_name="Bea", phone=PHONES["merged"], attributes=[("budtender", "Alex")], tags=["medical"]
    )
    twice = await make_persona(db, org, first_name="Bea", email="bea.old@example.com")
    await _events(db, org, twice, 40, messages=1, others=1)
    await _orders(db, org, PHONES["merged"], 1, start_days=60)
    await _merge(db, org, merged, twice)
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        both = ContactData(phone=PHONES["merged"], email="ann@example.com")
        result = await ingest_one(session, loaded, "test-pos", both, actor="test", path=[])
        assert result.outcome.value == "MERGED", result

    archived = await make_persona(db, org, first_name="Cal", phone=PHONES["archived"], loyalty_member=True)
    await _orders(db, org, PHONES["archived"], 2, start_days=10)
    async with db.session() as session, session.begin():
        await archive_persona(session, org.id, archived.id)

    erased = await make_persona(
        db,
        org,
        first_name="Dee",
        last_name="Fox",
        phone=PHONES["erased"],
        email="dee@example.com",
        attributes=[("budtender", "Sam")],
        tags=["vip"],
    )
    await _orders(db, org, PHONES["erased"], 2, start_days=20)
    await _events(db, org, erased, 15, messages=2, others=2)
    await _signups(db, org, erased)
    async with db.session() as session, session.begin():
        loaded = await session.get(Organization, org.id)
        assert loaded is not None
        contact = normalize_contact(PHONES["erased"], "dee@example.com", loaded.default_region, [])
        await request_privacy_action(session, loaded, contact, PrivacyAction.DELETE_DATA, requested_by="test")

    empty = await make_persona(db, org, email="nobody@example.com")

    # The other organization's customer, with the same phone as `full`.
    rival = await make_persona(db, rival_org, first_name="Ann", phone=PHONES["full"], loyalty_member=True)
    await _orders(db, rival_org, PHONES["full"], 2, start_days=4)
    await _events(db, rival_org, rival, 4, messages=1, others=1)

    personas = {
        "full": full,
        "merged": merged,
        "twice": twice,
        "archived": archived,
        "erased": erased,
        "empty": empty,
        "long": long,
        "rival": rival,
    }
    ids = {name: p.gid for name, p in personas.items()}
    ids["store"] = to_global_id("Store", stores[0].id)
    ids["organization"] = to_global_id("Organization", org.id)
    ids["unknown"] = to_global_id("Persona", uuid.UUID(int=7))
    return keys, ids, {name: p.number for name, p in personas.items()}


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


# ---------------------------------------------------------------- every registered operation


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
# historyFirst values; None leaves it out (the document's default).
SIZES: list[int | None] = [None, *HISTORY_FIRST]


# Which (role, persona) pairs read each registered operation: every role reads every
# operation, every persona is read by every operation, and the pairs in between are
# sampled (the whole product, 49 pairs an operation, took twice the module's time budget).
# The card and the History tab (the others select subsets of the card's fields) are read
# by every role for the personas whose answers differ most by role, and by three roles
# that see different subsets (everything; no engagement; no contact) for every persona.
# The other operations: every role on the full persona, two of those roles for every persona.
ALL_ROLES_READ: dict[str, set[str]] = {
    "card": {"full", "long", "merged", "rival"},
    "history": {"full", "long", "merged", "rival"},
}
EVERY_PERSONA_ROLES: dict[str, set[Role]] = {
    "card": {Role.OWNER, Role.STAFF, Role.ANALYST},
    "history": {Role.OWNER, Role.STAFF, Role.ANALYST},
}
OTHER_ALL_ROLES_READ = {"full"}
OTHER_EVERY_PERSONA_ROLES = {Role.OWNER, Role.ANALYST}


def _reads(stem: str, role: Role, persona: str) -> bool:
    return persona in ALL_ROLES_READ.get(stem, OTHER_ALL_ROLES_READ) or role in EVERY_PERSONA_ROLES.get(
        stem, OTHER_EVERY_PERSONA_ROLES
    )


def _operation_cases() -> Iterator[Any]:
    """The registered operations by role and persona (see `_reads`). Where the operation
    takes historyFirst each pair gets the size (or leaving it out) its role and its persona
    have met least, so that each meets as many sizes as it has pairs (up to all five), and
    the owner reads the two personas with history at every size."""
    for stem, name, _, variables in OPERATION_LIST:
        met: dict[str, set[int | None]] = {}
        for n, (role, persona) in enumerate((r, p) for r in Role for p in PERSONAS if _reads(stem, r, p)):
            sizes: list[int | None] = [None]
            if "historyFirst" in variables:
                by_role, by_persona = met.setdefault(role.value, set()), met.setdefault(persona, set())
                turn = SIZES[n % len(SIZES) :] + SIZES[: n % len(SIZES)]
                sizes = [min(turn, key=lambda size: (size in by_role) + (size in by_persona))]
                if role is Role.OWNER and persona in ("full", "long"):
                    sizes = SIZES
                by_role.update(sizes)
                by_persona.update(sizes)
            for size in sizes:
                suffix = "" if size is None else f"-historyFirst{size}"
                yield pytest.param(stem, name, role.value, persona, size, id=f"{stem}-{role.value}-{persona}{suffix}")


@pytest.mark.parametrize(("stem", "name", "role", "persona", "size"), list(_operation_cases()))
async def test_every_operation_answers_the_same_for_every_role_and_persona(
    world: World, stem: str, name: str, role: str, persona: str, size: int | None
) -> None:
    # Given a registered operation, a role and a persona (of another organization, for "rival")
    variables: dict[str, Any] = {"id": world.ids[persona]}
    if size is not None:
        variables["historyFirst"] = size

    # When both apps run it, then they answer the same
    payload = {"query": DOCUMENTS[stem, name], "operationName": name, "variables": variables}
    await assert_same_answer(world, role, payload)


BAD_IDS = {
    "malformed": "not-an-id",
    "not-a-uuid": "UGVyc29uYTpub3BlOm5vcGU",  # base64 of "Persona:nope:nope"
    "store-id": "@store",
    "organization-id": "@organization",
    "unknown-persona": "@unknown",
}


def _bad_id_cases() -> Iterator[Any]:
    """Every bad id for the card; an unknown and a malformed one for the rest."""
    for stem, name, _, _ in OPERATION_LIST:
        for bad in BAD_IDS if stem == "card" else ["malformed", "unknown-persona"]:
            yield pytest.param(stem, name, bad, id=f"{stem}-{bad}")


@pytest.mark.parametrize(("stem", "name", "bad"), list(_bad_id_cases()))
async def test_every_operation_answers_a_bad_id_the_same(world: World, stem: str, name: str, bad: str) -> None:
    # Given an id that names no persona of the organization; when both apps run the operation, then the same
    variables = resolve({"id": BAD_IDS[bad]}, world)
    payload = {"query": DOCUMENTS[stem, name], "operationName": name, "variables": variables}
    await assert_same_answer(world, Role.OWNER.value, payload)


# ---------------------------------------------------------------- persisted queries


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


@pytest.mark.parametrize(("stem", "name"), [pytest.param(s, n, id=s) for s, n, _, _ in OPERATION_LIST])
async def test_a_persisted_query_by_hash_answers_the_same(world: World, stem: str, name: str) -> None:
    # Given only the registered document's hash; when both apps run it, then they answer the same
    payload = {"extensions": persisted(sha256(DOCUMENTS[stem, name])), "variables": {"id": world.ids["archived"]}}
    await assert_same_answer(world, Role.STAFF.value, payload)


CARD = DOCUMENTS["card", "PersonaCard"]
HEADER = DOCUMENTS["header", "PersonaHeader"]
HISTORY = DOCUMENTS["history", "PersonaHistoryTab"]

PERSISTED_CASES = [
    pytest.param("POST", {"extensions": persisted(sha256(print_ast(parse(CARD))))}, id="canonical-print-hash"),
    pytest.param("GET", {"extensions": persisted(sha256(HEADER))}, id="get-by-hash"),
    pytest.param("POST", {"extensions": persisted("0" * 64)}, id="unknown-hash"),
    pytest.param("POST", {"query": HEADER, "extensions": persisted("0" * 64)}, id="hash-not-of-the-query"),
    pytest.param("POST", {"extensions": {"persistedQuery": {"version": 2}}}, id="unsupported-version"),
]


@pytest.mark.parametrize(("method", "payload"), PERSISTED_CASES)
async def test_persisted_query_variants_answer_the_same(world: World, method: str, payload: dict[str, Any]) -> None:
    # Given a hash in another spelling, over GET, unknown, not of the query sent or of a version we do not speak
    await assert_same_answer(world, Role.OWNER.value, {**payload, "variables": {"id": world.ids["full"]}}, method)


# ---------------------------------------------------------------- documents a compiled executor must get right

ALIASES = """
query Aliases($id: ID!) {
  persona(id: $id) {
    key: id
    id
    balance: rewardPoints
    again: rewardPoints
    history {
      one: orders(first: 1) { totalCount pageInfo { hasNextPage endCursor } nodes { id total } }
      three: orders(first: 3) { totalCount pageInfo { hasNextPage endCursor } nodes { id placedAt } }
      newest: points(first: 2) { edges { cursor node { kind delta } } }
      oldest: points(last: 2) { pageInfo { hasPreviousPage startCursor } edges { cursor node { kind delta } } }
    }
    recent: timeline(first: 2) { edges { cursor node { __typename } } }
    some: timeline(first: 4, kinds: [ORDER, MESSAGE]) {
      edges { node { __typename ... on Order { externalId } ... on Message { body } } }
    }
  }
  same: persona(id: $id) { number fullName }
}
"""

FRAGMENTS = """
query Fragments($id: ID!) {
  persona(id: $id) {
    ...Who
    ... on Persona { tags loyaltyMember }
    ... { createdAt }
    history {
      orders(first: 3) { ...OrderPage }
      points(first: 3) { nodes { ...Entry } }
      merges { nodes { ...MergeRow } }
    }
    traits { ...Contact favoriteStore { ... on Node { id } name } }
    timeline(first: 6) { edges { node { ...Event } } }
  }
}
fragment Who on Persona { id number ...Names traits { mobilePhone } }
fragment Names on Persona { firstName lastName fullName traits { emailAddress birthday } }
fragment OrderPage on OrderConnection {
  totalCount
  nodes { id ... on Node { id } store { ...Place } lines { product quantity } }
}
fragment Place on Store { id name }
fragment Entry on PointsEntry { kind delta ... on Node { id } order { externalId } }
fragment MergeRow on Merge { kind mergedNumber reason movedCounts survivor { ...Names } }
fragment Contact on Traits { mobilePhone signups { formName hasSignature } }
fragment Event on TimelineEvent { __typename ... on Node { id } ... on Order { total } ... on PointsEntry { delta } }
"""

TYPENAMES = """
query Typenames($id: ID!) {
  __typename
  persona(id: $id) {
    __typename
    history {
      __typename
      orders(first: 2) {
        __typename
        pageInfo { __typename hasNextPage }
        edges { __typename node { __typename id store { __typename } } }
      }
    }
    traits { __typename signups { __typename } }
    optIns { __typename channel }
    shoppingHabits { __typename preferredBrand { __typename top { __typename name } } }
    timeline(first: 3) { __typename edges { node { __typename } } }
  }
  viewer { __typename organization { __typename } }
}
"""

NESTED_MERGED_INTO = """
query Nested($id: ID!) {
  persona(id: $id) {
    number
    mergedInto {
      id
      number
      mergedInto { id number mergedInto { id } }
      history { merges { totalCount } }
    }
  }
}
"""

SURVIVOR_HISTORY = """
query Survivors($id: ID!) {
  persona(id: $id) {
    history {
      merges {
        totalCount
        nodes { kind mergedNumber survivor { number history { orders(first: 2) { totalCount nodes { externalId } } } } }
      }
    }
  }
}
"""

DIRECTIVES = """
query Directives($id: ID!, $show: Boolean!) {
  persona(id: $id) {
    id
    email @include(if: $show)
    phone @skip(if: $show)
    history @include(if: $show) { orders(first: 2) { totalCount } }
    ... on Persona @skip(if: $show) { tags fullName }
    ...Both @include(if: $show)
    traits { mobilePhone @skip(if: false) birthday @include(if: false) }
  }
}
fragment Both on Persona { number rewardPoints }
"""

RESTRICTED = """
query Restricted($id: ID!) {
  persona(id: $id) {
    id
    email
    phone
    birthday
    walletPin
    links { staffApp }
    traits { mobilePhone browser ipAddress }
    rewardPoints
    timeline(first: 2) { edges { cursor } }
    history { messages(first: 1) { totalCount } points(first: 1) { totalCount } surveys(first: 1) { totalCount } }
  }
}
"""

BY_NUMBER = """
query ByNumber($number: Int!) {
  personaByNumber(number: $number) {
    id
    number
    fullName
    mergedInto { number }
    history { orders(first: 1) { totalCount } }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Persona { number fullName email mergedInto { id } history { orders(first: 1) { nodes { id } } } }
    ... on Store { name }
    ... on Organization { name slug }
  }
}
"""

WITH_VIEWER = """
query WithViewer($id: ID!) {
  viewer { name role permissions organization { id name slug } }
  persona(id: $id) { id number fullName email }
  loyaltySettings { pointsPerDollar pointsPerOrder showPinInWallets referralPointsEnabled pointsExpireAfterDays }
  discounts { name pointsCost startsAt endsAt }
  audiences { name query isDefault }
}
"""

LINKS = "query Links($id: ID!) { persona(id: $id) { links { staffApp sharing wallet referral pixelToken } walletPin } }"

AD_HOC = {
    "aliases": ALIASES,
    "fragments": FRAGMENTS,
    "typenames": TYPENAMES,
    "nested-merged-into": NESTED_MERGED_INTO,
    "survivor-history": SURVIVOR_HISTORY,
    "directives": DIRECTIVES,
    "restricted": RESTRICTED,
    "by-number": BY_NUMBER,
    "node": NODE,
    "with-viewer": WITH_VIEWER,
    "links": LINKS,
    "card": CARD,
    "header": HEADER,
    "history": HISTORY,
}
EVERY_ROLE = [role.value for role in Role]
OWNER_STAFF_ANALYST = [Role.OWNER.value, Role.STAFF.value, Role.ANALYST.value]


def _ad_hoc_cases() -> Iterator[Any]:
    """(document name, who, variables): "@x" is x's global id, "#x" its number (see `resolve`)."""
    grid: list[tuple[str, list[str], list[tuple[str, dict[str, Any]]]]] = [
        ("aliases", OWNER_STAFF_ANALYST, [("long", {"id": "@long"})]),
        ("aliases", [Role.OWNER.value], [("empty", {"id": "@empty"})]),
        ("fragments", OWNER_STAFF_ANALYST, [("full", {"id": "@full"})]),
        ("fragments", [Role.OWNER.value], [("merged", {"id": "@merged"})]),
        ("typenames", [Role.OWNER.value, Role.STAFF.value], [("full", {"id": "@full"})]),
        ("nested-merged-into", [Role.OWNER.value], [(p, {"id": f"@{p}"}) for p in ("twice", "merged", "full")]),
        (
            "survivor-history",
            [Role.OWNER.value, Role.STAFF.value],
            [(p, {"id": f"@{p}"}) for p in ("twice", "merged", "full")],
        ),
        (
            "directives",
            [Role.OWNER.value, Role.STAFF.value],
            [(f"full-{show}", {"id": "@full", "show": show}) for show in (True, False)],
        ),
        ("restricted", EVERY_ROLE, [("full", {"id": "@full"})]),
        ("restricted", [Role.OWNER.value, Role.ANALYST.value], [("erased", {"id": "@erased"})]),
        (
            "by-number",
            [Role.OWNER.value, Role.STAFF.value],
            [(p, {"number": f"#{p}"}) for p in ("full", "merged", "erased")] + [("unknown", {"number": 999_999})],
        ),
        (
            "node",
            [Role.OWNER.value],
            [(p, {"id": f"@{p}"}) for p in ("full", "merged", "store", "organization", "unknown", "rival")]
            + [("malformed", {"id": "not-an-id"})],
        ),
        ("node", [Role.STAFF.value, Role.ANALYST.value], [("full", {"id": "@full"})]),
        ("with-viewer", EVERY_ROLE, [("full", {"id": "@full"})]),
        ("links", [Role.OWNER.value, Role.ANALYST.value], [(p, {"id": f"@{p}"}) for p in ("full", "erased", "merged")]),
        # The other organization's owner reads its own customer, and ours does not exist for it.
        ("card", [RIVAL_OWNER], [("rival", {"id": "@rival"}), ("full", {"id": "@full"})]),
        ("header", [RIVAL_OWNER], [("rival", {"id": "@rival"})]),
        # History pages of other sizes and kinds, both directions.
        (
            "history",
            [Role.OWNER.value, Role.STAFF.value],
            [("long-first3-kinds", {"id": "@long", "first": 3, "timelineFirst": 3, "timelineKinds": ["ORDER"]})],
        ),
        (
            "history",
            [Role.OWNER.value],
            [
                ("long-last2", {"id": "@long", "last": 2}),
                ("full-no-kinds", {"id": "@full", "first": 1, "timelineKinds": []}),
            ],
        ),
    ]
    for document, roles, inputs in grid:
        for who in roles:
            for label, variables in inputs:
                yield pytest.param(document, who, variables, id=f"{document}-{who}-{label}")


@pytest.mark.parametrize(("document", "who", "variables"), list(_ad_hoc_cases()))
async def test_ad_hoc_documents_answer_the_same(
    world: World, document: str, who: str, variables: dict[str, Any]
) -> None:
    # Given a document with aliases, fragments, directives, nested objects or several root fields
    await assert_same_answer(world, who, {"query": AD_HOC[document], "variables": resolve(variables, world)})


@pytest.mark.parametrize("who", [Role.OWNER.value, Role.ANALYST.value])
async def test_the_next_history_page_answers_the_same(world: World, who: str) -> None:
    # Given the first page of the long history's connections and timeline
    first = {"id": world.ids["long"], "first": 3, "timelineFirst": 4}
    page = json.loads((await assert_same_answer(world, who, {"query": HISTORY, "variables": first})).text)
    persona = page["data"]["persona"]
    after = {
        f"{name}After": connection["pageInfo"]["endCursor"]
        for name, connection in persona["history"].items()
        if connection is not None
    }
    if persona["timeline"] is not None:
        after["timelineAfter"] = persona["timeline"]["pageInfo"]["endCursor"]

    # When the next page is asked for with the cursors the reference gave, then both answer the same
    await assert_same_answer(world, who, {"query": HISTORY, "variables": {**first, **after}})


BAD_REQUESTS = [
    pytest.param({"query": "query { persona(id: ) { id } }"}, id="syntax-error"),
    pytest.param(
        {"query": "query ($id: ID!) { persona(id: $id) { shoeSize } }", "variables": {"id": "@full"}},
        id="unknown-field",
    ),
    pytest.param({"query": CARD}, id="missing-variable"),
    pytest.param({"query": CARD, "variables": {"id": "@full", "historyFirst": "ten"}}, id="historyFirst-not-an-int"),
    pytest.param({"query": CARD, "variables": {"id": "@full", "historyFirst": -1}}, id="historyFirst-negative"),
    pytest.param({"query": CARD, "variables": {"id": "@full", "historyFirst": 101}}, id="historyFirst-over-100"),
    pytest.param({"query": HISTORY, "variables": {"id": "@long", "ordersAfter": "nope"}}, id="malformed-cursor"),
    pytest.param({"query": HISTORY, "variables": {"id": "@long", "first": 2, "last": 2}}, id="first-and-last"),
    pytest.param({"query": CARD, "variables": {"id": "@full"}, "operationName": "Nope"}, id="unknown-operation-name"),
]


@pytest.mark.parametrize("payload", BAD_REQUESTS)
async def test_bad_requests_answer_the_same(world: World, payload: dict[str, Any]) -> None:
    # Given a request that cannot run whole (or at all); when both apps get it, then they answer the same
    await assert_same_answer(
        world, Role.OWNER.value, {**payload, "variables": resolve(payload.get("variables", {}), world)}
    )
