"""Root fields for personas: viewer, node, persona, personaByNumber, personas."""

from __future__ import annotations

import strawberry

from resolvers import persona as personas
from resolvers.errors import NotFound
from resolvers.pagination import PageRequest
from schema.context import Info
from schema.ids import parse_global_id
from schema.organization import LoyaltySettings, Organization, Viewer
from schema.persona import Persona
from schema.relay import Connection, Node

PersonaConnection = Connection[Persona]


async def _persona_or_not_found(info: Info, row: object | None) -> Persona | None:
    if row is None:
        raise NotFound("No persona with that id.")
    return Persona.from_row(row)


@strawberry.type
class PersonaQuery:
    @strawberry.field(description="Who is asking.")
    def viewer(self, info: Info) -> Viewer:
        v = info.context.viewer
        return Viewer(name=v.name, role=v.role, permissions=sorted(v.permissions))

    @strawberry.field(description="Any object by its global ID.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, uuid_ = parse_global_id(id)
        loaders = info.context.loaders
        if type_name == "Persona":
            return await _persona_or_not_found(info, await loaders.persona_by_id.load(uuid_))
        if type_name == "Organization" and uuid_ == info.context.viewer.org_id:
            return Organization.from_row(await loaders.organization.load(uuid_))
        raise NotFound("No object with that id.")

    @strawberry.field(description="A persona by its global ID; merged-away personas are returned too.")
    async def persona(self, info: Info, id: strawberry.ID) -> Persona | None:
        type_name, uuid_ = parse_global_id(id)
        if type_name != "Persona":
            raise NotFound("No persona with that id.")
        return await _persona_or_not_found(info, await info.context.loaders.persona_by_id.load(uuid_))

    @strawberry.field(description="A persona by the short number people read aloud.")
    async def persona_by_number(self, info: Info, number: int) -> Persona | None:
        return await _persona_or_not_found(info, await info.context.loaders.persona_by_number.load(number))

    @strawberry.field(description="The Personas page, newest first. Search syntax: see shared/DESIGN.md, 'Search'.")
    async def personas(
        self,
        info: Info,
        query: str | None = None,
        include_archived: bool | None = False,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> PersonaConnection:
        request = PageRequest.from_args(first, after, last, before)
        db, org_id, archived = info.context.db, info.context.viewer.org_id, bool(include_archived)
        async with db.read() as conn:
            page = await personas.personas_page(conn, org_id, request, include_archived=archived)

        async def count() -> int:
            async with db.read() as conn:
                return await personas.personas_count(conn, org_id, include_archived=archived)

        return PersonaConnection.of(page, Persona.from_row, count)

    @strawberry.field(description="The organization's loyalty program settings.")
    async def loyalty_settings(self, info: Info) -> LoyaltySettings:
        return LoyaltySettings.from_row(await info.context.loaders.organization.load(info.context.viewer.org_id))
