"""Loaders for the card's General and Points tabs: rollups, consents,
attributes, tags, sign-ups, stores and purchase counts, keyed by persona."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loaders.base import OrgLoader
from models import (
    Consent,
    CustomAttribute,
    Discount,
    PersonaRollup,
    PersonaTag,
    PurchaseCount,
    Redemption,
    SignupSubmission,
    Store,
)

ROLLUPS = PersonaRollup.__table__  # type: ignore[attr-defined]
CONSENTS = Consent.__table__  # type: ignore[attr-defined]
ATTRIBUTES = CustomAttribute.__table__  # type: ignore[attr-defined]
TAGS = PersonaTag.__table__  # type: ignore[attr-defined]
SIGNUPS = SignupSubmission.__table__  # type: ignore[attr-defined]
STORES = Store.__table__  # type: ignore[attr-defined]
PURCHASE_COUNTS = PurchaseCount.__table__  # type: ignore[attr-defined]
REDEMPTIONS = Redemption.__table__  # type: ignore[attr-defined]
DISCOUNTS = Discount.__table__  # type: ignore[attr-defined]


def _grouped(rows: Any, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
    by_persona: dict[uuid.UUID, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_persona[row.persona_id].append(row)
    return [by_persona.get(k, []) for k in keys]


class RollupByPersonaLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        rows = await conn.execute(
            select(ROLLUPS).where(ROLLUPS.c.org_id == self.org_id, ROLLUPS.c.persona_id.in_(keys))
        )
        found = {r.persona_id: r for r in rows}
        return [found.get(k) for k in keys]


class ConsentsByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        stmt = select(CONSENTS).where(CONSENTS.c.org_id == self.org_id, CONSENTS.c.persona_id.in_(keys))
        return _grouped(await conn.execute(stmt), keys)


class AttributesByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        stmt = (
            select(ATTRIBUTES)
            .where(ATTRIBUTES.c.org_id == self.org_id, ATTRIBUTES.c.persona_id.in_(keys))
            .order_by(ATTRIBUTES.c.key)
        )
        return _grouped(await conn.execute(stmt), keys)


class TagsByPersonaLoader(OrgLoader[uuid.UUID, list[str]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[str]]:
        stmt = (
            select(TAGS.c.persona_id, TAGS.c.tag)
            .where(TAGS.c.org_id == self.org_id, TAGS.c.persona_id.in_(keys))
            .order_by(TAGS.c.tag)
        )
        return [[r.tag for r in group] for group in _grouped(await conn.execute(stmt), keys)]


class SignupsByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        has_signature = SIGNUPS.c.signature.is_not(None).label("has_signature")
        stmt = (
            select(SIGNUPS.c.persona_id, SIGNUPS.c.form_name, SIGNUPS.c.url, SIGNUPS.c.submitted_at, has_signature)
            .where(SIGNUPS.c.org_id == self.org_id, SIGNUPS.c.persona_id.in_(keys))
            .order_by(SIGNUPS.c.submitted_at.desc())
        )
        return _grouped(await conn.execute(stmt), keys)


class StoreLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        rows = await conn.execute(select(STORES).where(STORES.c.org_id == self.org_id, STORES.c.id.in_(keys)))
        found = {r.id: r for r in rows}
        return [found.get(k) for k in keys]


class PurchaseCountsByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    """Every brand, category and product a persona bought, most bought first.

    One row per distinct name; the rows are few per persona (bounded by the
    catalogue), not per order, so the card never scans order history."""

    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        pc = PURCHASE_COUNTS.c
        stmt = (
            select(pc.persona_id, pc.dimension, pc.name, pc.order_count, pc.last_purchased_at)
            .where(pc.org_id == self.org_id, pc.persona_id.in_(keys))
            .order_by(pc.order_count.desc(), pc.last_purchased_at.desc(), pc.name)
        )
        return _grouped(await conn.execute(stmt), keys)


class LastRedemptionByPersonaLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        r = REDEMPTIONS.c
        stmt = (
            select(r.persona_id, r.discount_name, r.redeemed_at)
            .where(r.org_id == self.org_id, r.persona_id.in_(keys), r.status == "REDEEMED")
            .order_by(r.persona_id, r.redeemed_at.desc(), r.id.desc())
        )
        found: dict[uuid.UUID, Row[Any]] = {}
        for row in await conn.execute(stmt):
            found.setdefault(row.persona_id, row)
        return [found.get(k) for k in keys]


class DiscountsLoader(OrgLoader[str, list[Row[Any]]]):
    """The organization's discounts (one key: "all"), oldest first."""

    async def fetch(self, conn: AsyncConnection, keys: list[str]) -> list[list[Row[Any]]]:
        rows = list(
            await conn.execute(
                select(DISCOUNTS)
                .where(DISCOUNTS.c.org_id == self.org_id)
                .order_by(DISCOUNTS.c.points_cost, DISCOUNTS.c.id)
            )
        )
        return [rows for _ in keys]


class DiscountLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        rows = await conn.execute(select(DISCOUNTS).where(DISCOUNTS.c.org_id == self.org_id, DISCOUNTS.c.id.in_(keys)))
        found = {r.id: r for r in rows}
        return [found.get(k) for k in keys]
