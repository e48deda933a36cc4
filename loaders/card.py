"""Loaders for the card's General and Points tabs: rollups, consents,
attributes, tags, sign-ups, stores and purchase counts, keyed by persona."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from coalesce import RowLike
from loaders.base import GroupedBy, OnePerKey, OrgLoader, keys_in, org_param
from models.tables import (
    ATTRIBUTES,
    CONSENTS,
    DISCOUNTS,
    PERSONAS,
    PURCHASE_COUNTS,
    REDEMPTIONS,
    ROLLUPS,
    SIGNUPS,
    STORES,
    TAGS,
)

_pc = PURCHASE_COUNTS.c
_r = REDEMPTIONS.c
ROLLUPS_OF = select(ROLLUPS).where(ROLLUPS.c.org_id == org_param(), keys_in(ROLLUPS.c.persona_id))
CONSENTS_OF = select(CONSENTS).where(CONSENTS.c.org_id == org_param(), keys_in(CONSENTS.c.persona_id))
ATTRIBUTES_OF = (
    select(ATTRIBUTES)
    .where(ATTRIBUTES.c.org_id == org_param(), keys_in(ATTRIBUTES.c.persona_id))
    .order_by(ATTRIBUTES.c.key)
)
TAGS_OF = (
    select(TAGS.c.persona_id, TAGS.c.tag)
    .where(TAGS.c.org_id == org_param(), keys_in(TAGS.c.persona_id))
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
    .where(SIGNUPS.c.org_id == org_param(), keys_in(SIGNUPS.c.persona_id))
    .order_by(SIGNUPS.c.submitted_at.desc())
)
STORES_BY_ID = select(STORES).where(STORES.c.org_id == org_param(), keys_in(STORES.c.id))
PURCHASE_COUNTS_OF = (
    select(_pc.persona_id, _pc.dimension, _pc.name, _pc.order_count, _pc.last_purchased_at)
    .where(_pc.org_id == org_param(), keys_in(_pc.persona_id))
    .order_by(_pc.order_count.desc(), _pc.last_purchased_at.desc(), _pc.name)
)
# Each persona's last redemption, found from the persona: one index probe per key, so a
# persona with hundreds of redemptions costs what one with a single redemption does.
_latest = REDEMPTIONS.alias("latest")
_LATEST_ID = (
    select(_latest.c.id)
    .where(_latest.c.org_id == PERSONAS.c.org_id, _latest.c.persona_id == PERSONAS.c.id)
    .where(_latest.c.status == "REDEEMED")
    .order_by(_latest.c.redeemed_at.desc(), _latest.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
LAST_REDEMPTIONS_OF = (
    select(_r.persona_id, _r.discount_name, _r.redeemed_at)
    .where(_r.org_id == org_param())
    .where(_r.id.in_(select(_LATEST_ID).where(PERSONAS.c.org_id == org_param(), keys_in(PERSONAS.c.id))))
    .order_by(_r.persona_id)
)
DISCOUNTS_OF_ORG = (
    select(DISCOUNTS).where(DISCOUNTS.c.org_id == org_param()).order_by(DISCOUNTS.c.points_cost, DISCOUNTS.c.id)
)
DISCOUNTS_BY_ID = select(DISCOUNTS).where(DISCOUNTS.c.org_id == org_param(), keys_in(DISCOUNTS.c.id))


class RollupByPersonaLoader(OrgLoader[uuid.UUID, RowLike | None]):
    statement = ROLLUPS_OF
    shape = OnePerKey("persona_id")


class ConsentsByPersonaLoader(OrgLoader[uuid.UUID, list[RowLike]]):
    statement = CONSENTS_OF
    shape = GroupedBy("persona_id")


class AttributesByPersonaLoader(OrgLoader[uuid.UUID, list[RowLike]]):
    statement = ATTRIBUTES_OF
    shape = GroupedBy("persona_id")


class TagsByPersonaLoader(OrgLoader[uuid.UUID, list[str]]):
    statement = TAGS_OF
    shape = GroupedBy("persona_id", pick="tag")


class SignupsByPersonaLoader(OrgLoader[uuid.UUID, list[RowLike]]):
    statement = SIGNUPS_OF
    shape = GroupedBy("persona_id")


class StoreLoader(OrgLoader[uuid.UUID, RowLike | None]):
    statement = STORES_BY_ID
    shape = OnePerKey()


class PurchaseCountsByPersonaLoader(OrgLoader[uuid.UUID, list[RowLike]]):
    """Every brand, category and product a persona bought, most bought first.

    One row per distinct name; the rows are few per persona (bounded by the
    catalogue), not per order, so the card never scans order history."""

    statement = PURCHASE_COUNTS_OF
    shape = GroupedBy("persona_id")


class LastRedemptionByPersonaLoader(OrgLoader[uuid.UUID, RowLike | None]):
    statement = LAST_REDEMPTIONS_OF
    shape = OnePerKey("persona_id")


def _every_key(rows: Sequence[RowLike], keys: Sequence[Any], /) -> list[Any]:
    return [list(rows) for _ in keys]


class DiscountsLoader(OrgLoader[str, list[RowLike]]):
    """The organization's discounts (one key: "all"), oldest first."""

    statement = DISCOUNTS_OF_ORG
    shape = staticmethod(_every_key)

    def params(self, keys: list[str]) -> dict[str, object]:
        return {"org_id": self.org_id}


class DiscountLoader(OrgLoader[uuid.UUID, RowLike | None]):
    statement = DISCOUNTS_BY_ID
    shape = OnePerKey()
