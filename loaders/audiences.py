"""Which audiences each persona is in, for Persona.audiences."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from coalesce import RowLike
from loaders.base import OrgLoader
from resolvers.audiences import AUDIENCES_OF, members, membership_statements, memberships_by, same_searches
from resolvers.search_terms import Dialect

# Each organization's audience list as this process last read it (bounded: organizations come and go).
_LAST_READ: dict[uuid.UUID, list[Any]] = {}
LISTS_KEPT = 1024


class AudiencesByPersonaLoader(OrgLoader[uuid.UUID, list[RowLike]]):
    """The audience list, and the batch's memberships in one UNION ALL of every audience's
    search over the batch's personas (one statement per 20 audiences).

    The memberships depend on the list, which would make them a round trip of their own
    after it. So they go out with it (and with the request's other reads of the same tick),
    from the list as this process last read it; when the list read beside them tells
    another story (an audience saved, changed or deleted since, by any process), they are
    read again from the list as it is. The answer is always the list's as read."""

    async def fetch(self, keys: list[uuid.UUID]) -> list[list[RowLike]]:
        dialect = Dialect(sqlite=self.db.is_sqlite)
        last = _LAST_READ.get(self.org_id)
        listed = self.db.enqueue(AUDIENCES_OF, {"org_id": self.org_id})
        statements = membership_statements(last, self.org_id, dialect) if last is not None else []
        guessed = [self.db.enqueue(stmt, {"persona_ids": keys}) for stmt in statements]
        try:
            audiences = await listed
        finally:
            results = await asyncio.gather(*guessed, return_exceptions=True)
        if len(_LAST_READ) >= LISTS_KEPT:
            _LAST_READ.clear()
        _LAST_READ[self.org_id] = audiences
        if last is not None and same_searches(last, audiences):
            rows = [result for result in results if not isinstance(result, BaseException)]
            if len(rows) < len(results):
                raise next(result for result in results if isinstance(result, BaseException))
            found = members(rows, audiences, keys)
        else:
            found = await memberships_by(self.db.select, dialect, self.org_id, keys, audiences)
        return [found.get(k, []) for k in keys]
