"""Demo data: a realistic dispensary with stores, personas, two years of
orders and every kind of history. Deterministic for a seed. Contacts and
orders go through the same write paths as the API, so rollups stay right."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from faker import Faker
from rich.progress import Progress
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from database import Database
from models import Discount, Message, Organization, PersonaAction, PixelEvent, SignupSubmission, Store, SurveySubmission
from models.base import utcnow
from models.enums import ConsentSource, MergeKind, PointsEntryKind
from resolvers import merges
from resolvers.discounts import redeem
from resolvers.errors import UserError
from resolvers.ingest import ConsentData, ContactData, ingest_one
from resolvers.orders import LineData, OrderData, record_order
from resolvers.organizations import create_organization
from resolvers.points import post_entry

CATALOG: dict[str, list[tuple[str, str, int]]] = {
    # category -> (brand, product, price in cents)
    "Flower": [
        ("Cookies", "Gary Payton 3.5g", 4500),
        ("Alien Labs", "Atomic Apple 3.5g", 5500),
        ("Stiiizy", "Blue Dream 3.5g", 3500),
        ("Glass House", "Mac 1 7g", 4000),
    ],
    "Vapes": [
        ("Stiiizy", "Pineapple Express Pod 1g", 4000),
        ("Raw Garden", "Live Resin Cart 1g", 3800),
        ("Select", "Elite Cart 0.5g", 3000),
    ],
    "Edibles": [
        ("Kiva", "Camino Gummies Sparkling Pear", 2000),
        ("Wyld", "Marionberry Gummies", 1800),
        ("Plus", "Sour Watermelon Gummies", 2200),
    ],
    "Pre-Rolls": [("Lowell Farms", "Lowell 35s 3.5g", 3500), ("Jeeter", "Baby Jeeter Churros 5pk", 3000)],
    "Concentrates": [("Raw Garden", "Refined Live Resin 1g", 4000), ("West Coast Cure", "Badder 1g", 4500)],
    "Topicals": [("Papa & Barkley", "Releaf Balm", 5000)],
}
STORES = ["Downtown", "Eastside", "Harbor"]
TAGS = ["vip", "medical", "veteran", "senior", "industry", "first-timer"]
CAMPAIGNS = ["4/20 Blowout", "Weekend Deals", "New Drops", "Birthday Club", "Happy Hour"]
SITES = ["shop.demo-dispensary.com", "www.demo-dispensary.com"]
TAX_RATE = Decimal("0.15")


async def seed_demo(db: Database, *, slug: str, personas: int, seed: int, progress: bool = False) -> str:
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    now = utcnow().replace(microsecond=0)
    async with db.session() as session, session.begin():
        org = await create_organization(session, slug=slug, name="Demo Dispensary")
        org.points_per_dollar_milli = 1000
        org.points_per_order = 5
        org.referral_points_enabled = True
        org.referral_points = 50
        org.show_pin_in_wallets = True
        stores = [Store(org_id=org.id, name=name) for name in STORES]
        session.add_all(stores)
        discounts = [
            Discount(org_id=org.id, name="$5 off", points_cost=100),
            Discount(org_id=org.id, name="$10 off", points_cost=200),
            Discount(org_id=org.id, name="Free pre-roll", points_cost=150),
            Discount(
                org_id=org.id,
                name="20% off (weekend)",
                points_cost=400,
                starts_at=now - dt.timedelta(days=2),
                ends_at=now + dt.timedelta(days=5),
            ),
            Discount(
                org_id=org.id,
                name="Summer $25 off",
                points_cost=500,
                starts_at=now - dt.timedelta(days=200),
                ends_at=now - dt.timedelta(days=100),
            ),
        ]
        session.add_all(discounts)
        await session.flush()
    counts = {"personas": 0, "orders": 0, "events": 0, "merges": 0}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("seeding demo personas", total=personas)
        for start in range(0, personas, 100):
            async with db.session() as session, session.begin():
                org_row = await session.get(Organization, org.id)
                assert org_row is not None
                for i in range(start, min(start + 100, personas)):
                    await _persona(session, org_row, stores, discounts, rng, fake, now, i, counts)
                    bar.advance(task)
    async with db.session() as session, session.begin():
        org_row = await session.get(Organization, org.id)
        assert org_row is not None
        counts["merges"] = await _merges(session, org_row, rng, fake)
    return (
        f"seeded organization {slug!r}: {counts['personas']} personas, {counts['orders']} orders, "
        f"{counts['events']} engagement events, {counts['merges']} merges"
    )


def _contact(rng: random.Random, fake: Faker, now: dt.datetime, i: int) -> ContactData:
    first, last = fake.first_name(), fake.last_name()
    member = rng.random() < 0.7
    has_phone = rng.random() < 0.9
    phone = f"+1{rng.choice(['213', '310', '415', '510', '619', '707', '916'])}{rng.randint(2000000, 9999999)}"
    email = f"{first}.{last}{i}@{rng.choice(['gmail.com', 'yahoo.com', 'icloud.com', 'outlook.com'])}".lower()
    return ContactData(
        source_id=f"pos-{i}",
        first_name=first,
        last_name=last,
        phone=phone if has_phone else None,
        email=email if not has_phone or rng.random() < 0.8 else None,
        birthday=fake.date_of_birth(minimum_age=21, maximum_age=80),
        loyalty_member=member,
        loyalty_signup_at=now - dt.timedelta(days=rng.randint(30, 800)) if member else None,
        attributes=[("budtender", rng.choice(["Sam", "Alex", "Jordan", "Riley"]))]
        + ([("medical_card_expires", str(fake.date_between("+30d", "+2y")))] if rng.random() < 0.2 else []),
        tags=rng.sample(TAGS, k=rng.choice([0, 0, 1, 1, 2])),
        consents=[
            ConsentData("TEXT", rng.choice(["OPTED_IN", "OPTED_IN", "OPTED_OUT"]), ConsentSource.INTEGRATION.value),
            ConsentData("EMAIL", rng.choice(["OPTED_IN", "OPTED_OUT"]), ConsentSource.IMPORT.value),
            ConsentData("LOYALTY", "OPTED_IN" if member else "UNKNOWN", ConsentSource.INTEGRATION.value),
        ],
        legacy_points=rng.choice([None, None, None, rng.randint(10, 500)]),
    )


async def _persona(
    session: AsyncSession,
    org: Organization,
    stores: list[Store],
    discounts: list[Discount],
    rng: random.Random,
    fake: Faker,
    now: dt.datetime,
    i: int,
    counts: dict[str, int],
) -> None:
    contact = _contact(rng, fake, now, i)
    result = await ingest_one(session, org, "demo-pos", contact, actor="demo", path=["demo", str(i)], number_block=50)
    persona = result.persona
    if persona is None:
        return
    counts["personas"] += 1
    # Most customers shop a few times; some are regulars with hundreds of visits.
    n_orders = int(rng.paretovariate(1.3)) - 1 if rng.random() < 0.9 else rng.randint(20, 120)
    for n in range(min(n_orders, 300)):
        placed = now - dt.timedelta(days=rng.uniform(0, 730), minutes=n)
        lines = []
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            category = rng.choice(list(CATALOG))
            brand, product, price = rng.choice(CATALOG[category])
            lines.append(
                LineData(
                    product=product,
                    brand=brand,
                    category=category,
                    quantity=rng.choice([1, 1, 2]),
                    unit_price=Decimal(price).scaleb(-2),
                )
            )
        subtotal = sum((ln.unit_price * ln.quantity for ln in lines), Decimal(0))
        tax = (subtotal * TAX_RATE).quantize(Decimal("0.01"))
        order = OrderData(
            external_id=f"ticket-{i}-{n}",
            source="demo-pos",
            customer=ContactData(phone=persona.phone, email=persona.email),
            placed_at=placed,
            subtotal=subtotal,
            tax=tax,
            total=subtotal + tax,
            lines=lines,
            store_id=rng.choice(stores).id,
        )
        recorded = await record_order(session, org, order, actor="demo", path=["orders", str(n)])
        counts["orders"] += recorded.order is not None
    await _ledger_extras(session, org, persona.id, discounts, rng, now)
    counts["events"] += await _engagement(session, org, persona.id, rng, fake, now, i)
    if rng.random() < 0.3:
        persona.favorite_store_id = rng.choice(stores).id
        persona.wallet_pin = f"{rng.randint(0, 9999):04d}"


async def _ledger_extras(
    session: AsyncSession,
    org: Organization,
    persona_id: object,
    discounts: list[Discount],
    rng: random.Random,
    now: dt.datetime,
) -> None:
    assert isinstance(persona_id, type(org.id))
    for kind, low, high in (
        (PointsEntryKind.CAMPAIGN_GIFT, 10, 100),
        (PointsEntryKind.FLOW_GIFT, 5, 50),
        (PointsEntryKind.COLLECTIBLE, 1, 25),
        (PointsEntryKind.STAFF_ADJUSTMENT, 5, 60),
    ):
        if rng.random() < 0.25:
            await post_entry(
                session,
                org_id=org.id,
                persona_id=persona_id,
                kind=kind,
                delta=rng.randint(low, high),
                note=f"demo {kind.value.lower().replace('_', ' ')}",
                actor="demo",
            )
    usable = [d for d in discounts if d.ends_at is None]
    if rng.random() < 0.4:
        try:
            async with session.begin_nested():
                await redeem(session, org_id=org.id, persona_id=persona_id, discount=rng.choice(usable), actor="demo")
        except UserError:
            pass  # not enough points: the customer just did not redeem
    if rng.random() < 0.05:
        try:
            async with session.begin_nested():
                await post_entry(
                    session,
                    org_id=org.id,
                    persona_id=persona_id,
                    kind=PointsEntryKind.EXPIRATION,
                    delta=-rng.randint(1, 20),
                    note="demo expiry",
                    actor="demo",
                )
        except UserError:
            pass


async def _engagement(
    session: AsyncSession,
    org: Organization,
    persona_id: object,
    rng: random.Random,
    fake: Faker,
    now: dt.datetime,
    i: int,
) -> int:
    assert isinstance(persona_id, type(org.id))
    made = 0
    for n in range(rng.randint(0, 6)):
        campaign = rng.choice(CAMPAIGNS)
        session.add(
            Message(
                org_id=org.id,
                persona_id=persona_id,
                source="demo-sms",
                external_id=f"m-{i}-{n}",
                direction="OUTBOUND",
                channel=rng.choice(["SMS", "SMS", "EMAIL", "MMS"]),
                body=f"{campaign}: {fake.sentence(nb_words=8)}",
                campaign=campaign,
                sent_at=now - dt.timedelta(days=rng.uniform(0, 365)),
            )
        )
        session.add(
            PersonaAction(
                org_id=org.id,
                persona_id=persona_id,
                source="demo-sms",
                external_id=f"a-{i}-{n}",
                kind=rng.choice(["RECEIVED", "OPENED", "CLICKED", "LANDING_PAGE_VISIT"]),
                campaign=campaign,
                detail=None,
                occurred_at=now - dt.timedelta(days=rng.uniform(0, 365)),
            )
        )
        made += 2
    if rng.random() < 0.2:
        session.add(
            SurveySubmission(
                org_id=org.id,
                persona_id=persona_id,
                source="demo-surveys",
                external_id=f"s-{i}",
                survey_name="How was your visit?",
                status=rng.choice(["COMPLETE", "PARTIAL"]),
                answers=[
                    {"question": "How would you rate your budtender?", "answer": str(rng.randint(1, 5))},
                    {"question": "Anything we could do better?", "answer": None},
                ],
                submitted_at=now - dt.timedelta(days=rng.uniform(0, 300)),
            )
        )
        made += 1
    for n in range(rng.choice([0, 0, 1, 3])):
        session.add(
            PixelEvent(
                org_id=org.id,
                persona_id=persona_id,
                source="pixel",
                external_id=f"p-{i}-{n}",
                site=rng.choice(SITES),
                event=rng.choice(["page_view", "add_to_cart", "view_menu"]),
                url=f"https://{rng.choice(SITES)}/menu",
                occurred_at=now - dt.timedelta(days=rng.uniform(0, 90)),
            )
        )
        made += 1
    if rng.random() < 0.1:
        session.add(
            SignupSubmission(
                org_id=org.id,
                persona_id=persona_id,
                form_name="In-store tablet",
                url="https://demo-dispensary.com/join",
                ip_address=fake.ipv4_public(),
                user_agent=fake.user_agent(),
                submitted_at=now - dt.timedelta(days=rng.uniform(0, 700)),
            )
        )
        made += 1
    await session.flush()
    return made


async def _merges(session: AsyncSession, org: Organization, rng: random.Random, fake: Faker) -> int:
    """A few duplicates, as a clerk typing a new phone for a known email would make."""
    from sqlalchemy import select

    from models import Persona

    candidates = list(
        (
            await session.execute(
                select(Persona).where(col(Persona.org_id) == org.id).order_by(col(Persona.number)).limit(40)
            )
        ).scalars()
    )
    made = 0
    for survivor, merged in zip(candidates[0:10:2], candidates[1:10:2], strict=False):
        await merges.merge_personas(
            session,
            org_id=org.id,
            survivor=survivor,
            merged=merged,
            kind=MergeKind.MANUAL,
            reason=None,
            actor="demo manager",
        )
        made += 1
    return made
