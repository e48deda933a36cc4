"""The data the execution-parity tests (tests/test_execution_parity_*.py) compare
the two apps' answers over: two organizations of their own (nothing else is emptied or
read), filled through the write paths the API uses (ingestion, record_order,
recordEvents, the ledger, merges, archive, privacy erasure).

`build_world` makes it: a persona with every tab filled ("full"), one with more history
than a page ("long"), one merged away twice over ("twice" into "merged" into "full"),
an archived, an erased and an empty one, and the other organization's customer
("rival", with the same phone as "full"), plus an API key per role (and RIVAL_OWNER).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from database import Database
from models import Discount, Organization, Persona, SignupSubmission, Store
from models.enums import MergeKind, PointsEntryKind, PrivacyAction
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.audiences import save_audience
from resolvers.discounts import redeem
from resolvers.events import EventData, EventKind, record_events
from resolvers.ingest import ConsentData, ContactData, ingest_one
from resolvers.merges import merge_personas
from resolvers.orders import LineData, OrderData, OrderOutcome, record_order
from resolvers.organizations import create_organization
from resolvers.points import post_entry
from resolvers.points_actions import reverse_redemption
from resolvers.privacy import normalize_contact, request_privacy_action
from resolvers.profile import archive_persona
from schema.ids import to_global_id
from tests.factories import MadePersona, days_ago, make_persona

RIVAL_OWNER = "RIVAL_OWNER"  # the other organization's owner, for its own persona

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
