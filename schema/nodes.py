"""Query.node: any object of the graph by its global id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.types.base import StrawberryObjectDefinition

from resolvers.errors import NotFound
from schema.context import Info
from schema.ids import parse_global_id
from schema.relay import Node


def node_type(schema: strawberry.Schema, type_name: str) -> Callable[[Any], Node]:
    """How a row the node loader found becomes the GraphQL type of that name.

    The loader's NODE_TABLES (loaders/nodes.py) says which types are nodes; each
    of them is a Node type of the same name with a ``from_row``.
    """
    definition = schema.get_type_by_name(type_name)
    assert isinstance(definition, StrawberryObjectDefinition), f"{type_name} is no object type"
    from_row: Callable[[Any], Node] = definition.origin.from_row
    return from_row


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
        return node_type(info.schema, type_name)(row)
