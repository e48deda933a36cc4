"""Which audiences each persona is in, for Persona.audiences."""

from __future__ import annotations

import uuid

from coalesce import RowLike
from loaders.base import OrgLoader
from resolvers.audiences import AUDIENCES_OF, memberships_by
from resolvers.search_terms import Dialect


class AudiencesByPersonaLoader(OrgLoader[uuid.UUID, list[RowLike]]):
    """Two statements per batch, whatever its size: the audience list, then one
    UNION ALL of every audience's search over the batch's personas."""

    async def fetch(self, keys: list[uuid.UUID]) -> list[list[RowLike]]:
        audiences = await self.db.select(AUDIENCES_OF, {"org_id": self.org_id})
        # The membership searches go out with the request's other reads of the same tick.
        dialect = Dialect(sqlite=self.db.is_sqlite)
        found = await memberships_by(self.db.select, dialect, self.org_id, keys, audiences)
        return [found.get(k, []) for k in keys]
