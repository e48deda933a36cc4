"""Root fields for personas: viewer, node, persona, personaByNumber, personas."""

from __future__ import annotations

import strawberry

from resolvers.errors import NotFound
from resolvers.search_pages import SearchPageRequest
from schema.context import Info
from schema.ids import parse_global_id
from schema.organization import LoyaltySettings, Viewer
from schema.persona import Persona
from schema.search import PersonaConnection, compile_for_viewer, persona_connection


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

    @strawberry.field(description="A persona by its global ID; merged-away personas are returned too.")
    async def persona(self, info: Info, id: strawberry.ID) -> Persona | None:
        type_name, uuid_ = parse_global_id(id)
        if type_name != "Persona":
            raise NotFound("No persona with that id.")
        return await _persona_or_not_found(info, await info.context.loaders.persona_by_id.load(uuid_))

    @strawberry.field(description="A persona by the short number people read aloud.")
    async def persona_by_number(self, info: Info, number: int) -> Persona | None:
        return await _persona_or_not_found(info, await info.context.loaders.persona_by_number.load(number))

    @strawberry.field(
        description="The Personas page: searched by `query` (see the README, 'Search'), by relevance then newest first."
    )
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
        request = SearchPageRequest.from_args(first, after, last, before)
        search = await compile_for_viewer(info, query, include_archived=bool(include_archived))
        return await persona_connection(info, search, request)

    @strawberry.field(description="The organization's loyalty program settings.")
    async def loyalty_settings(self, info: Info) -> LoyaltySettings:
        return LoyaltySettings.from_row(await info.context.loaders.organization.load(info.context.viewer.org_id))
