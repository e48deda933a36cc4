"""The viewer, its organization and the organization's loyalty settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry

from resolvers.amounts import milli_to_decimal
from schema.context import Info
from schema.enums import Permission, Role
from schema.ids import to_global_id
from schema.relay import Node


@strawberry.type(description="A dispensary business: the tenant every record belongs to.")
class Organization(Node):
    name: str
    slug: str

    @classmethod
    def from_row(cls, row: Any) -> Organization:
        return cls(id=strawberry.ID(to_global_id("Organization", row.id)), name=row.name, slug=row.slug)


@strawberry.type(description="The organization's loyalty program settings.")
class LoyaltySettings:
    points_per_dollar: Decimal
    points_per_order: int
    show_pin_in_wallets: bool
    referral_points_enabled: bool
    points_expire_after_days: int | None

    @classmethod
    def from_row(cls, row: Any) -> LoyaltySettings:
        return cls(
            points_per_dollar=milli_to_decimal(row.points_per_dollar_milli),
            points_per_order=row.points_per_order,
            show_pin_in_wallets=row.show_pin_in_wallets,
            referral_points_enabled=row.referral_points_enabled,
            points_expire_after_days=row.points_expire_after_days,
        )


@strawberry.type(description="Who is asking: the API key's name, role and organization.")
class Viewer:
    name: str
    role: Role
    permissions: list[Permission]

    @strawberry.field
    async def organization(self, info: Info) -> Organization:
        row = await info.context.loaders.organization.load(info.context.viewer.org_id)
        return Organization.from_row(row)
