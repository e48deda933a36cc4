"""DataLoaders, one per relation or rollup, built fresh per request."""

from __future__ import annotations

import uuid
from functools import cached_property

from aiodataloader import DataLoader

from database import Database
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
