"""Audiences: the type, the root fields, Persona.audiences and the two mutations."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from models import Audience as AudienceRow
from resolvers import audiences
from resolvers.amounts import milli_to_decimal
from resolvers.errors import ApiError, NotFound
from resolvers.errors import UserError as DomainError
from resolvers.search_pages import SearchPageRequest, search_count
from schema.context import Info
from schema.ids import parse_global_id, to_global_id
from schema.mutations import UserError, run_mutation
from schema.relay import Node
from schema.search import PersonaConnection, compile_for_viewer, persona_connection


@strawberry.type(description="A saved smart search: the personas it finds, and a points multiplier for them.")
class Audience(Node):
    row: strawberry.Private[Any]
    name: str
    query: str = strawberry.field(description="The smart search that defines it; empty for the default ALL audience.")
    is_default: bool = strawberry.field(description="True for ALL, the audience of every persona with PII.")
    points_multiplier: Decimal = strawberry.field(
        description="Extra points multiplier applied on order accrual for members (1 = none)."
    )

    @classmethod
    def from_row(cls, row: Any) -> Audience:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Audience", row.id)),
            name=row.name,
            query=row.query,
            is_default=row.is_default,
            points_multiplier=milli_to_decimal(row.points_multiplier_milli),
        )

    @strawberry.field(description="How many personas the audience holds now.")
    async def size(self, info: Info) -> int:
        search = await compile_for_viewer(info, self.query, with_pii=True)
        async with info.context.db.read() as conn:
            return await search_count(conn, search)

    @strawberry.field(description="The audience's personas, by relevance then newest first.")
    async def personas(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> PersonaConnection:
        request = SearchPageRequest.from_args(first, after, last, before)
        return await persona_connection(info, await compile_for_viewer(info, self.query, with_pii=True), request)


async def persona_audiences(info: Info, persona_id: uuid.UUID) -> list[Audience]:
    """Persona.audiences: the audiences the persona is in, ALL first."""
    return [Audience.from_row(r) for r in await info.context.loaders.audiences_by_persona.load(persona_id)]


def _audience_id(value: str, field: list[str]) -> uuid.UUID:
    try:
        type_name, id_ = parse_global_id(value)
    except ApiError as e:
        raise DomainError("INVALID", e.message, field) from None
    if type_name != "Audience":
        raise DomainError("NOT_FOUND", "No audience with that id.", field)
    return id_


@strawberry.input(description="An audience to create (no id) or to change (its id).")
class SaveAudienceInput:
    id: strawberry.ID | None = None
    name: str
    query: str = strawberry.field(description="A smart search; it must parse (else a BAD_QUERY userError).")
    points_multiplier: Decimal | None = strawberry.field(
        default=None, description="At least 1, at most 10, three decimal places; 1 when left out of a new audience."
    )


@strawberry.input(description="The audience to delete; the default ALL cannot be.")
class DeleteAudienceInput:
    id: strawberry.ID


@strawberry.type(description="The audience as saved (or as it was, when deleted), or why it was refused.")
class AudiencePayload:
    audience: Audience | None
    user_errors: list[UserError]


@strawberry.type
class AudienceQuery:
    @strawberry.field(description="The organization's audiences, the default ALL first, then by name.")
    async def audiences(self, info: Info) -> list[Audience]:
        async with info.context.db.read() as conn:
            rows = await audiences.list_audiences(conn, info.context.viewer.org_id)
        return [Audience.from_row(r) for r in rows]

    @strawberry.field(description="One audience by its global ID.")
    async def audience(self, info: Info, id: strawberry.ID) -> Audience | None:
        type_name, audience_id = parse_global_id(id)
        row = None
        if type_name == "Audience":
            async with info.context.db.read() as conn:
                row = await audiences.audience_by_id(conn, info.context.viewer.org_id, audience_id)
        if row is None:
            raise NotFound("No audience with that id.")
        return Audience.from_row(row)


@strawberry.type
class AudienceMutation:
    @strawberry.mutation(description="Create or change an audience; its query must parse.")
    async def save_audience(self, info: Info, input: SaveAudienceInput) -> AudiencePayload:
        org_id = info.context.viewer.org_id

        async def work(session: AsyncSession) -> AudienceRow:
            audience_id = _audience_id(input.id, ["input", "id"]) if input.id is not None else None
            return await audiences.save_audience(
                session,
                org_id,
                audience_id=audience_id,
                name=input.name,
                query=input.query,
                points_multiplier=input.points_multiplier,
            )

        outcome = await run_mutation(info, "saveAudience", work, targets=[input.id] if input.id else [])
        audience = Audience.from_row(outcome.value) if outcome.value is not None else None
        return AudiencePayload(audience=audience, user_errors=outcome.user_errors)

    @strawberry.mutation(description="Delete an audience; the default ALL cannot be deleted.")
    async def delete_audience(self, info: Info, input: DeleteAudienceInput) -> AudiencePayload:
        org_id = info.context.viewer.org_id

        async def work(session: AsyncSession) -> AudienceRow:
            return await audiences.delete_audience(session, org_id, _audience_id(input.id, ["input", "id"]))

        outcome = await run_mutation(info, "deleteAudience", work, targets=[input.id])
        audience = Audience.from_row(outcome.value) if outcome.value is not None else None
        return AudiencePayload(audience=audience, user_errors=outcome.user_errors)
