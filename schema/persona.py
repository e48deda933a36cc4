"""Persona: the header and General tab of the card."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from models.base import utcnow
from models.enums import PurchaseDimension
from permissions.fields import guarded
from permissions.matrix import Permission
from resolvers.card import ranked, shopping_habits
from resolvers.search_pages import CARRIED_POINTS
from schema.context import Info
from schema.discounts import DiscountOffer, active_discount_rows
from schema.enums import SourceKind
from schema.history import PersonaHistory, TimelineConnection, TimelineKind, timeline
from schema.ids import to_global_id
from schema.persona_general import (
    CustomAttribute,
    Favorites,
    OptIn,
    PersonaLinks,
    PersonaLogs,
    RankedItem,
    ShoppingHabits,
    Traits,
)
from schema.points import PointsOverview, PointsReconciliation
from schema.relay import Node

if TYPE_CHECKING:
    from schema.audiences import Audience


@strawberry.type(description="Where a persona first came from.")
class Source:
    kind: SourceKind
    integration: str | None = strawberry.field(
        description="The integrated system's name when kind is INTEGRATION (e.g. the point-of-sale)."
    )


@strawberry.type(description="One customer: the persona card.")
class Persona(Node):
    row: strawberry.Private[Any]
    number: int = strawberry.field(description="The short number people read aloud and type into a merge form.")
    first_name: str | None
    last_name: str | None
    created_at: dt.datetime
    archived_at: dt.datetime | None
    loyalty_member: bool
    loyalty_signup_at: dt.datetime | None
    email: str | None = guarded(Permission.VIEW_CONTACT, description="Normalized, lower-case email.")
    phone: str | None = guarded(Permission.VIEW_CONTACT, description="Mobile phone in E.164.")
    birthday: dt.date | None = guarded(Permission.VIEW_CONTACT)

    @classmethod
    def from_row(cls, row: Any) -> Persona:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Persona", row.id)),
            number=row.number,
            first_name=row.first_name,
            last_name=row.last_name,
            created_at=row.created_at,
            archived_at=row.archived_at,
            loyalty_member=row.loyalty_member,
            loyalty_signup_at=row.loyalty_signup_at,
            email=row.email,
            phone=row.phone,
            birthday=row.birthday,
        )

    @strawberry.field(description="First and last name together, or null when neither is known.")
    def full_name(self) -> str | None:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or None

    @strawberry.field(description="Where the persona first came from.")
    def sourced_from(self) -> Source:
        return Source(kind=SourceKind(self.row.source_kind), integration=self.row.source_name)

    @guarded(Permission.VIEW_POINTS, description="The points balance.")
    async def reward_points(self, info: Info) -> int | None:
        carried = getattr(self.row, CARRIED_POINTS, None)  # a Personas page row reads it (search_pages.Carry)
        if carried is not None:
            return int(carried)
        rollup = await info.context.loaders.rollup_by_persona.load(self.row.id)
        return rollup.points_balance if rollup else 0

    @strawberry.field(description="Consent on all eight channels, UNKNOWN where nothing was ever recorded.")
    async def opt_ins(self, info: Info) -> list[OptIn]:
        return OptIn.all_channels(await info.context.loaders.consents_by_persona.load(self.row.id))

    @guarded(Permission.VIEW_SHOPPING, description="Spend, frequency and preferences, from the rollups.")
    async def shopping_habits(self, info: Info) -> ShoppingHabits | None:
        loaders = info.context.loaders
        rollup, counts = await asyncio.gather(
            loaders.rollup_by_persona.load(self.row.id), loaders.purchase_counts_by_persona.load(self.row.id)
        )
        return ShoppingHabits.of(shopping_habits(rollup, counts, utcnow()))

    @guarded(Permission.VIEW_SHOPPING, description="The top five products, categories and brands.")
    async def favorites(self, info: Info) -> Favorites | None:
        counts = await info.context.loaders.purchase_counts_by_persona.load(self.row.id)
        return Favorites(
            products=RankedItem.all_of(ranked(counts, PurchaseDimension.PRODUCT)),
            categories=RankedItem.all_of(ranked(counts, PurchaseDimension.CATEGORY)),
            brands=RankedItem.all_of(ranked(counts, PurchaseDimension.BRAND)),
        )

    @strawberry.field(description="Every custom attribute, by key.")
    async def custom_attributes(self, info: Info) -> list[CustomAttribute]:
        rows = await info.context.loaders.attributes_by_persona.load(self.row.id)
        return [CustomAttribute.from_row(r) for r in rows]

    @strawberry.field(description="Tags, alphabetically.")
    async def tags(self, info: Info) -> list[str]:
        return await info.context.loaders.tags_by_persona.load(self.row.id)

    @strawberry.field(description="What is known about the customer and where it came from.")
    def traits(self) -> Traits | None:
        return Traits.of(self.row)

    @strawberry.field(description="When things first happened for this customer.")
    def logs(self) -> PersonaLogs:
        return PersonaLogs(
            first_seen_at=self.row.created_at,
            loyalty_enrolled_at=self.row.loyalty_signup_at,
            sms_opt_out_at=self.row.sms_opt_out_at,
        )

    @guarded(Permission.VIEW_CONTACT, description="Shown only where the organization's showPinInWallets setting is on.")
    async def wallet_pin(self, info: Info) -> str | None:
        org = await info.context.loaders.organization.load(self.row.org_id)
        return self.row.wallet_pin if org is not None and org.show_pin_in_wallets else None

    @guarded(Permission.VIEW_CONTACT, description="Staff-app, sharing, wallet and referral links.")
    def links(self, info: Info) -> PersonaLinks | None:
        row = self.row
        return PersonaLinks(settings=info.context.settings, org_id=row.org_id, persona_id=row.id, number=row.number)

    @guarded(Permission.VIEW_POINTS, description="Every points figure of the Points tab.")
    async def points_overview(self, info: Info) -> PointsOverview | None:
        loaders = info.context.loaders
        rollup, last = await asyncio.gather(
            loaders.rollup_by_persona.load(self.row.id), loaders.last_redemption_by_persona.load(self.row.id)
        )
        return PointsOverview.of(rollup, last)

    @guarded(
        Permission.VIEW_POINTS,
        description="Why points differ from spend x accrual rate (the FAQ, answered with numbers).",
    )
    async def points_reconciliation(self, info: Info) -> PointsReconciliation | None:
        loaders = info.context.loaders
        rollup, org = await asyncio.gather(
            loaders.rollup_by_persona.load(self.row.id), loaders.organization.load(self.row.org_id)
        )
        assert org is not None
        return PointsReconciliation.of(rollup, org.points_per_dollar_milli)

    @guarded(Permission.VIEW_POINTS, description="The discounts active now, with this persona's progress to each.")
    async def discounts(self, info: Info) -> list[DiscountOffer] | None:
        rollup, rows = await asyncio.gather(
            info.context.loaders.rollup_by_persona.load(self.row.id), active_discount_rows(info)
        )
        points = rollup.points_balance if rollup else 0
        return [DiscountOffer.of(r, points) for r in rows]

    @guarded(Permission.VIEW_SHOPPING, description="The audiences this persona is in, the default ALL first.")
    async def audiences(self, info: Info) -> list[Annotated[Audience, strawberry.lazy("schema.audiences")]] | None:
        from schema.audiences import persona_audiences  # schema.audiences imports this module

        return await persona_audiences(info, self.row.id)

    @strawberry.field(description="Set on a persona that was merged away; points at the survivor.")
    async def merged_into(self, info: Info) -> Persona | None:
        if self.row.merged_into_id is None:
            return None
        row = await info.context.loaders.persona_by_id.load(self.row.merged_into_id)
        return Persona.from_row(row) if row is not None else None

    @strawberry.field(description="The History tab: each kind of history as its own connection.")
    def history(self) -> PersonaHistory:
        return PersonaHistory(persona_id=self.row.id)

    @guarded(Permission.VIEW_ENGAGEMENT, description="Every kind of history in one newest-first list.")
    async def timeline(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        kinds: list[TimelineKind] | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> TimelineConnection | None:
        return await timeline(info, self.row.id, kinds, (first, after, last, before))
