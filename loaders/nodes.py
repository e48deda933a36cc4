"""Any object by its global id: Query.node. One statement per kind of object
in a batch, each scoped to the viewer's organization."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

from sqlalchemy import Table, select

import models
from coalesce import RowLike
from loaders.base import OrgLoader, keys_in, org_param

# The objects Query.node fetches, by type name; schema/nodes.py turns a row into
# the GraphQL type of the same name, so this is the one list of node types.
NODE_TABLES: dict[str, Table] = {
    model.__name__: model.__table__  # type: ignore[union-attr]
    for model in (
        models.Audience,
        models.Discount,
        models.Merge,
        models.Message,
        models.Order,
        models.Persona,
        models.PersonaAction,
        models.PixelEvent,
        models.PointsEntry,
        models.PrivacyRequest,
        models.Redemption,
        models.Store,
        models.SurveySubmission,
    )
}


NODES_BY_ID = {
    type_name: select(table).where(table.c.org_id == org_param(), keys_in(table.c.id))
    for type_name, table in NODE_TABLES.items()
}


class NodeLoader(OrgLoader[tuple[str, uuid.UUID], RowLike | None]):
    async def fetch(self, keys: list[tuple[str, uuid.UUID]]) -> list[RowLike | None]:
        wanted: dict[str, list[uuid.UUID]] = defaultdict(list)
        for type_name, id_ in keys:
            if type_name in NODE_TABLES:
                wanted[type_name].append(id_)
        # Issued together: on PostgreSQL they go out as one statement (database.RequestDatabase).
        results = await asyncio.gather(
            *(
                self.db.select(NODES_BY_ID[type_name], {"org_id": self.org_id, "keys": ids})
                for type_name, ids in wanted.items()
            )
        )
        found: dict[tuple[str, uuid.UUID], RowLike] = {}
        for type_name, rows in zip(wanted, results, strict=True):
            for row in rows:
                found[(type_name, row.id)] = row
        return [found.get(k) for k in keys]
