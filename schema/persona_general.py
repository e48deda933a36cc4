"""The value types of the card's General tab: consents, shopping habits,
favorites, attributes, traits, logs and links."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import strawberry

from permissions.fields import guarded
from permissions.matrix import Permission
from resolvers.card import HabitFigures, PreferenceFigures, Ranked
from resolvers.links import persona_token, referral_url, sharing_url, staff_app_url, wallet_url
from schema.context import Info
from schema.enums import AttributeSource, Channel, ConsentSource, OptInStatus
from schema.ids import to_global_id
from schema.relay import Node
from settings import Settings


@strawberry.type(description="A store of the organization.")
class Store(Node):
    name: str

    @classmethod
    def from_row(cls, row: Any) -> Store:
        return cls(id=strawberry.ID(to_global_id("Store", row.id)), name=row.name)


@strawberry.type(description="Consent on one channel, with who set it and when.")
class OptIn:
    channel: Channel
    status: OptInStatus
    source: ConsentSource | None
    updated_at: dt.datetime | None

    @classmethod
    def all_channels(cls, consents: list[Any]) -> list[OptIn]:
        """Always all eight channels, UNKNOWN where nothing was ever recorded."""
        by_channel = {c.channel: c for c in consents}
        result = []
        for channel in Channel:
            row = by_channel.get(channel.value)
            if row is None:
                result.append(cls(channel=channel, status=OptInStatus.UNKNOWN, source=None, updated_at=None))
            else:
                result.append(
                    cls(
                        channel=channel,
                        status=OptInStatus(row.status),
                        source=ConsentSource(row.source),
                        updated_at=row.updated_at,
                    )
                )
        return result


@strawberry.type(description="A name with how many orders it appears in.")
class RankedItem:
    name: str
    count: int

    @classmethod
    def all_of(cls, items: list[Ranked]) -> list[RankedItem]:
        return [cls(name=i.name, count=i.count) for i in items]


@strawberry.type(description="A favourite brand, category or product.")
class Preference:
    name: str = strawberry.field(description="The most purchased; ties go to the most recent purchase.")
    count: int
    top: list[RankedItem] = strawberry.field(description="The top five with counts, most purchased first.")

    @classmethod
    def of(cls, figures: PreferenceFigures | None) -> Preference | None:
        if figures is None:
            return None
        return cls(name=figures.name, count=figures.count, top=RankedItem.all_of(figures.top))


@strawberry.type(description="How the customer shops, from the persona's rollups.")
class ShoppingHabits:
    spend_all_time: Decimal = strawberry.field(description="Post-tax, all time.")
    sales_count: int
    average_order: Decimal | None
    items_per_order: float | None
    last_seen_days: int | None = strawberry.field(description="Whole days since the latest order (UTC).")
    shops_every_days: float | None = strawberry.field(description="Average days between orders; null under two.")
    preferred_brand: Preference | None
    preferred_category: Preference | None
    preferred_product: Preference | None

    @classmethod
    def of(cls, f: HabitFigures) -> ShoppingHabits:
        return cls(
            spend_all_time=f.spend_all_time,
            sales_count=f.sales_count,
            average_order=f.average_order,
            items_per_order=f.items_per_order,
            last_seen_days=f.last_seen_days,
            shops_every_days=f.shops_every_days,
            preferred_brand=Preference.of(f.preferred["brand"]),
            preferred_category=Preference.of(f.preferred["category"]),
            preferred_product=Preference.of(f.preferred["product"]),
        )


@strawberry.type(description="The top five products, categories and brands, with counts.")
class Favorites:
    products: list[RankedItem]
    categories: list[RankedItem]
    brands: list[RankedItem]


@strawberry.type(description="A key/value set on a persona by an import, the point of sale or staff.")
class CustomAttribute:
    key: str
    value: str
    source: AttributeSource
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> CustomAttribute:
        return cls(key=row.key, value=row.value, source=AttributeSource(row.source), updated_at=row.updated_at)


@strawberry.type(description="A loyalty sign-up form the customer submitted.")
class SignupSubmission:
    form_name: str
    url: str
    submitted_at: dt.datetime
    has_signature: bool

    @classmethod
    def from_row(cls, row: Any) -> SignupSubmission:
        return cls(form_name=row.form_name, url=row.url, submitted_at=row.submitted_at, has_signature=row.has_signature)


@strawberry.type(description="What is known about the customer and where it came from.")
class Traits:
    persona: strawberry.Private[Any]
    mobile_phone: str | None = guarded(Permission.VIEW_CONTACT)
    email_address: str | None = guarded(Permission.VIEW_CONTACT)
    birthday: dt.date | None = guarded(Permission.VIEW_CONTACT)
    contact_id: str | None = strawberry.field(description="The persona's contact id in PersonaGraph.")
    imported_from: str | None = strawberry.field(description="The source the persona first came from.")
    source_id: str | None = strawberry.field(description="The source system's own id for the customer.")
    browser: str | None = guarded(Permission.VIEW_TECHNICAL_TRAITS)
    ip_address: str | None = guarded(Permission.VIEW_TECHNICAL_TRAITS)

    @classmethod
    def of(cls, row: Any) -> Traits:
        return cls(
            persona=row,
            mobile_phone=row.phone,
            email_address=row.email,
            birthday=row.birthday,
            contact_id=row.id.hex,
            imported_from=row.source_name or row.source_kind,
            source_id=row.source_id,
            browser=row.browser,
            ip_address=row.ip_address,
        )

    @strawberry.field(description="The store the customer shops at most, as set by staff or the point of sale.")
    async def favorite_store(self, info: Info) -> Store | None:
        if self.persona.favorite_store_id is None:
            return None
        row = await info.context.loaders.store.load(self.persona.favorite_store_id)
        return Store.from_row(row) if row is not None else None

    @guarded(Permission.VIEW_TECHNICAL_TRAITS, description="Sign-up forms submitted, newest first.")
    async def signups(self, info: Info) -> list[SignupSubmission] | None:
        rows = await info.context.loaders.signups_by_persona.load(self.persona.id)
        return [SignupSubmission.from_row(r) for r in rows]


@strawberry.type(description="When things first happened for this customer.")
class PersonaLogs:
    first_seen_at: dt.datetime
    loyalty_enrolled_at: dt.datetime | None
    sms_opt_out_at: dt.datetime | None = strawberry.field(description="The latest opt-out from text messages.")


@strawberry.type(description="Links to this persona for staff and for the customer.")
class PersonaLinks:
    """Each link made when asked for: a signed token is ~0.1 ms, and the card asks for two of three."""

    settings: strawberry.Private[Settings]
    org_id: strawberry.Private[uuid.UUID]
    persona_id: strawberry.Private[uuid.UUID]
    number: strawberry.Private[int]

    @strawberry.field
    def staff_app(self) -> str:
        return staff_app_url(self.settings, self.number)

    @strawberry.field
    def sharing(self) -> str:
        return sharing_url(self.settings, self.number)

    @strawberry.field(description="The customer's wallet page; carries a signed, expiring token.")
    def wallet(self) -> str:
        return wallet_url(self.settings, self.org_id, self.persona_id)

    @strawberry.field(description="The refer-a-friend link; carries a signed, expiring token.")
    def referral(self) -> str:
        return referral_url(self.settings, self.org_id, self.persona_id)

    @strawberry.field(
        description="The signed token campaign links carry as ?pg=<token>, so /px.js ties page views to this persona."
    )
    def pixel_token(self) -> str:
        return persona_token(self.settings, self.org_id, self.persona_id, "pixel")
