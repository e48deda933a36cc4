"""Any object by its global id: Query.node. One statement per kind of object
in a batch, each scoped to the viewer's organization."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

import models
from loaders.base import OrgLoader

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


class NodeLoader(OrgLoader[tuple[str, uuid.UUID], Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[tuple[str, uuid.UUID]]) -> list[Row[Any] | None]:
        wanted: dict[str, list[uuid.UUID]] = defaultdict(list)
        for type_name, id_ in keys:
            if type_name in NODE_TABLES:
                wanted[type_name].append(id_)
        found: dict[tuple[str, uuid.UUID], Row[Any]] = {}
        for type_name, ids in wanted.items():
            table = NODE_TABLES[type_name]
            for row in await conn.execute(select(table).where(table.c.org_id == self.org_id, table.c.id.in_(ids))):
                found[(type_name, row.id)] = row
        return [found.get(k) for k in keys]
