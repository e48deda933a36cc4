"""Query.node: any object of the graph by its global id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from resolvers.errors import NotFound
from schema.context import Info
from schema.ids import parse_global_id
from schema.relay import Node


def _builders() -> dict[str, Callable[[Any], Node]]:
    # Imported here: the node types' modules import the root schema pieces.
    from schema.audiences import Audience
    from schema.discounts import Discount
    from schema.history import (
        Merge,
        Message,
        Order,
        PersonaAction,
        PixelEvent,
        PointsEntry,
        Redemption,
        SurveySubmission,
    )
    from schema.persona import Persona
    from schema.persona_general import Store
    from schema.privacy import PrivacyRequest

    types: list[Any] = [
        Audience,
        Discount,
        Merge,
        Message,
        Order,
        Persona,
        PersonaAction,
        PixelEvent,
        PointsEntry,
        PrivacyRequest,
        Redemption,
        Store,
        SurveySubmission,
    ]
    return {t.__name__: t.from_row for t in types}


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global ID; another organization's objects do not exist.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, uuid_ = parse_global_id(id)
        if type_name == "Organization" and uuid_ == info.context.viewer.org_id:
            from schema.organization import Organization

            return Organization.from_row(await info.context.loaders.organization.load(uuid_))
        row = await info.context.loaders.node.load((type_name, uuid_))
        if row is None:
            raise NotFound("No object with that id.")
        return _builders()[type_name](row)
