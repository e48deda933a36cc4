"""Loaders for the card's General and Points tabs: rollups, consents,
attributes, tags, sign-ups, stores and purchase counts, keyed by persona."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loaders.base import OrgLoader, keys_param, one_per_key, org_param
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


_pc = PURCHASE_COUNTS.c
_r = REDEMPTIONS.c
ROLLUPS_OF = select(ROLLUPS).where(ROLLUPS.c.org_id == org_param(), ROLLUPS.c.persona_id.in_(keys_param()))
CONSENTS_OF = select(CONSENTS).where(CONSENTS.c.org_id == org_param(), CONSENTS.c.persona_id.in_(keys_param()))
ATTRIBUTES_OF = (
    select(ATTRIBUTES)
    .where(ATTRIBUTES.c.org_id == org_param(), ATTRIBUTES.c.persona_id.in_(keys_param()))
    .order_by(ATTRIBUTES.c.key)
)
TAGS_OF = (
    select(TAGS.c.persona_id, TAGS.c.tag)
    .where(TAGS.c.org_id == org_param(), TAGS.c.persona_id.in_(keys_param()))
    .order_by(TAGS.c.tag)
)
SIGNUPS_OF = (
    select(
        SIGNUPS.c.persona_id,
        SIGNUPS.c.form_name,
        SIGNUPS.c.url,
        SIGNUPS.c.submitted_at,
        SIGNUPS.c.signature.is_not(None).label("has_signature"),
    )
    .where(SIGNUPS.c.org_id == org_param(), SIGNUPS.c.persona_id.in_(keys_param()))
    .order_by(SIGNUPS.c.submitted_at.desc())
)
STORES_BY_ID = select(STORES).where(STORES.c.org_id == org_param(), STORES.c.id.in_(keys_param()))
PURCHASE_COUNTS_OF = (
    select(_pc.persona_id, _pc.dimension, _pc.name, _pc.order_count, _pc.last_purchased_at)
    .where(_pc.org_id == org_param(), _pc.persona_id.in_(keys_param()))
    .order_by(_pc.order_count.desc(), _pc.last_purchased_at.desc(), _pc.name)
)
REDEMPTIONS_OF = (
    select(_r.persona_id, _r.discount_name, _r.redeemed_at)
    .where(_r.org_id == org_param(), _r.persona_id.in_(keys_param()), _r.status == "REDEEMED")
    .order_by(_r.persona_id, _r.redeemed_at.desc(), _r.id.desc())
)
DISCOUNTS_OF_ORG = (
    select(DISCOUNTS).where(DISCOUNTS.c.org_id == org_param()).order_by(DISCOUNTS.c.points_cost, DISCOUNTS.c.id)
)
DISCOUNTS_BY_ID = select(DISCOUNTS).where(DISCOUNTS.c.org_id == org_param(), DISCOUNTS.c.id.in_(keys_param()))


class RollupByPersonaLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        return one_per_key(await conn.execute(ROLLUPS_OF, self.params(keys)), keys, "persona_id")


class ConsentsByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        return _grouped(await conn.execute(CONSENTS_OF, self.params(keys)), keys)


class AttributesByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        return _grouped(await conn.execute(ATTRIBUTES_OF, self.params(keys)), keys)


class TagsByPersonaLoader(OrgLoader[uuid.UUID, list[str]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[str]]:
        return [[r.tag for r in group] for group in _grouped(await conn.execute(TAGS_OF, self.params(keys)), keys)]


class SignupsByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        return _grouped(await conn.execute(SIGNUPS_OF, self.params(keys)), keys)


class StoreLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        return one_per_key(await conn.execute(STORES_BY_ID, self.params(keys)), keys)


class PurchaseCountsByPersonaLoader(OrgLoader[uuid.UUID, list[Row[Any]]]):
    """Every brand, category and product a persona bought, most bought first.

    One row per distinct name; the rows are few per persona (bounded by the
    catalogue), not per order, so the card never scans order history."""

    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        return _grouped(await conn.execute(PURCHASE_COUNTS_OF, self.params(keys)), keys)


class LastRedemptionByPersonaLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        found: dict[uuid.UUID, Row[Any]] = {}
        for row in await conn.execute(REDEMPTIONS_OF, self.params(keys)):
            found.setdefault(row.persona_id, row)
        return [found.get(k) for k in keys]


class DiscountsLoader(OrgLoader[str, list[Row[Any]]]):
    """The organization's discounts (one key: "all"), oldest first."""

    async def fetch(self, conn: AsyncConnection, keys: list[str]) -> list[list[Row[Any]]]:
        rows = list(await conn.execute(DISCOUNTS_OF_ORG, {"org_id": self.org_id}))
        return [rows for _ in keys]


class DiscountLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        return one_per_key(await conn.execute(DISCOUNTS_BY_ID, self.params(keys)), keys)
