"""Property: the rollups kept incrementally by every write equal a
recompute from the raw orders and ledger rows."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from database import Database
from models import Organization
from models.enums import PointsEntryKind
from resolvers import rollups
from resolvers.errors import UserError
from resolvers.ingest import ContactData
from resolvers.orders import LineData, OrderData, record_order
from resolvers.points import post_entry
from tests.factories import make_persona

PHONES = itertools.count(1000)
PRODUCTS = ["Gary Payton", "Blue Dream", "Camino Gummies", "Pod 1g", "Badder"]
BRANDS = [None, "Cookies", "Kiva", "Stiiizy"]
CATEGORIES = [None, "Flower", "Edibles", "Vapes"]

lines = st.lists(
    st.tuples(st.sampled_from(PRODUCTS), st.sampled_from(BRANDS), st.sampled_from(CATEGORIES), st.integers(1, 4)),
    min_size=0,
    max_size=4,
)
orders = st.lists(st.tuples(st.integers(0, 900), st.integers(0, 50_000), st.booleans(), lines), max_size=6)
entries = st.lists(
    st.tuples(st.sampled_from([k for k in PointsEntryKind if k is not PointsEntryKind.ORDER]), st.integers(-300, 300)),
    max_size=8,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=orders, entries=entries)
async def test_rollups_equal_a_recompute(
    db: Database,
    org: Organization,
    orders: list[tuple[int, int, bool, list[tuple[str, str | None, str | None, int]]]],
    entries: list[tuple[PointsEntryKind, int]],
) -> None:
    persona = await make_persona(db, org, phone=f"+1415555{next(PHONES):04d}")
    now = dt.datetime.now(dt.UTC)
    for n, (days, subtotal_cents, member, order_lines) in enumerate(orders):
        async with db.session() as session, session.begin():
            loaded = await session.get(Organization, org.id)
            assert loaded is not None
            subtotal = Decimal(subtotal_cents).scaleb(-2)
            await record_order(
                session,
                loaded,
                OrderData(
                    external_id=f"{persona.id.hex}-{n}",
                    source="prop",
                    customer=ContactData(phone=persona.row.phone, loyalty_member=member or None),
                    placed_at=now - dt.timedelta(days=days),
                    subtotal=subtotal,
                    tax=Decimal("1.00"),
                    total=subtotal + 1,
                    lines=[LineData(p, q, Decimal("5.00"), b, c) for p, b, c, q in order_lines],
                ),
                actor="prop",
                path=[],
            )
    refusals = []
    for kind, delta in entries:
        try:
            async with db.session() as session, session.begin():
                await post_entry(session, org_id=org.id, persona_id=persona.id, kind=kind, delta=delta)
        except UserError as refused:
            refusals.append(refused.code)
    assert set(refusals) <= {"NEGATIVE_BALANCE"}

    async with db.session() as session:
        kept = await rollups.stored(session, org.id, persona.id)
        fresh = await rollups.recompute(session, org.id, persona.id)
    assert kept.figures == fresh.figures
    assert kept.purchase_counts == fresh.purchase_counts
    assert kept.figures["points_balance"] >= 0
