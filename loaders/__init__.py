"""DataLoaders, one per relation or rollup, built fresh per request."""

from __future__ import annotations

import uuid
from functools import cached_property

from aiodataloader import DataLoader

from database import Database
from loaders.audiences import AudiencesByPersonaLoader
from loaders.card import (
    AttributesByPersonaLoader,
    ConsentsByPersonaLoader,
    DiscountLoader,
    DiscountsLoader,
    LastRedemptionByPersonaLoader,
    PurchaseCountsByPersonaLoader,
    RollupByPersonaLoader,
    SignupsByPersonaLoader,
    StoreLoader,
    TagsByPersonaLoader,
)
from loaders.history import (
    HistoryCountLoader,
    OrderLinesByOrderLoader,
    OrderLoader,
    PointsEarnedByOrderLoader,
    RedemptionLoader,
)
from loaders.nodes import NodeLoader
from loaders.persona import OrganizationLoader, PersonaByIdLoader, PersonaByNumberLoader


class Loaders:
    """Each loader is made on first use, so a request pays only for what it asks."""

    def __init__(self, db: Database, org_id: uuid.UUID) -> None:
        self.db = db
        self.org_id = org_id

    def clear(self) -> None:
        """Forget every loaded value: a mutation just changed the data."""
        for name, value in list(vars(self).items()):
            if isinstance(value, DataLoader):
                del self.__dict__[name]

    @cached_property
    def organization(self) -> OrganizationLoader:
        return OrganizationLoader(self.db, self.org_id)

    @cached_property
    def persona_by_id(self) -> PersonaByIdLoader:
        return PersonaByIdLoader(self.db, self.org_id)

    @cached_property
    def persona_by_number(self) -> PersonaByNumberLoader:
        return PersonaByNumberLoader(self.db, self.org_id)

    @cached_property
    def audiences_by_persona(self) -> AudiencesByPersonaLoader:
        return AudiencesByPersonaLoader(self.db, self.org_id)

    @cached_property
    def rollup_by_persona(self) -> RollupByPersonaLoader:
        return RollupByPersonaLoader(self.db, self.org_id)

    @cached_property
    def consents_by_persona(self) -> ConsentsByPersonaLoader:
        return ConsentsByPersonaLoader(self.db, self.org_id)

    @cached_property
    def attributes_by_persona(self) -> AttributesByPersonaLoader:
        return AttributesByPersonaLoader(self.db, self.org_id)

    @cached_property
    def tags_by_persona(self) -> TagsByPersonaLoader:
        return TagsByPersonaLoader(self.db, self.org_id)

    @cached_property
    def signups_by_persona(self) -> SignupsByPersonaLoader:
        return SignupsByPersonaLoader(self.db, self.org_id)

    @cached_property
    def history_count(self) -> HistoryCountLoader:
        return HistoryCountLoader(self.db, self.org_id)

    @cached_property
    def store(self) -> StoreLoader:
        return StoreLoader(self.db, self.org_id)

    @cached_property
    def purchase_counts_by_persona(self) -> PurchaseCountsByPersonaLoader:
        return PurchaseCountsByPersonaLoader(self.db, self.org_id)

    @cached_property
    def last_redemption_by_persona(self) -> LastRedemptionByPersonaLoader:
        return LastRedemptionByPersonaLoader(self.db, self.org_id)

    @cached_property
    def discounts(self) -> DiscountsLoader:
        return DiscountsLoader(self.db, self.org_id)

    @cached_property
    def discount(self) -> DiscountLoader:
        return DiscountLoader(self.db, self.org_id)

    @cached_property
    def order(self) -> OrderLoader:
        return OrderLoader(self.db, self.org_id)

    @cached_property
    def order_lines_by_order(self) -> OrderLinesByOrderLoader:
        return OrderLinesByOrderLoader(self.db, self.org_id)

    @cached_property
    def points_earned_by_order(self) -> PointsEarnedByOrderLoader:
        return PointsEarnedByOrderLoader(self.db, self.org_id)

    @cached_property
    def redemption(self) -> RedemptionLoader:
        return RedemptionLoader(self.db, self.org_id)

    @cached_property
    def node(self) -> NodeLoader:
        return NodeLoader(self.db, self.org_id)
