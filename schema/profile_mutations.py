"""Profile mutations: archive and restore, traits, custom attributes, tags
and consent (resolvers/profile.py does the work)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from models import Organization as OrganizationRow
from resolvers import profile
from resolvers.errors import ApiError
from resolvers.errors import UserError as DomainError
from schema.context import Info
from schema.enums import Channel, OptInStatus
from schema.ids import parse_global_id
from schema.ingest import AttributeInput
from schema.mutations import MutationOutcome, UserError, run_mutation
from schema.persona import Persona


def input_id(value: str, type_name: str, field: list[str]) -> uuid.UUID:
    """The uuid in a global id of an input: INVALID when malformed, NOT_FOUND when it names another type."""
    try:
        found, id_ = parse_global_id(value)
    except ApiError as e:
        raise DomainError("INVALID", e.message, field) from None
    if found != type_name:
        raise DomainError("NOT_FOUND", f"No {type_name} with that id.", field)
    return id_


async def persona_after(info: Info, persona_id: uuid.UUID | None) -> Persona | None:
    """The persona as the committed mutation left it (the loaders were cleared)."""
    if persona_id is None:
        return None
    row = await info.context.loaders.persona_by_id.load(persona_id)
    return Persona.from_row(row) if row is not None else None


async def organization(session: AsyncSession, org_id: uuid.UUID) -> OrganizationRow:
    org = await session.get(OrganizationRow, org_id)
    assert org is not None, "the viewer's organization exists"
    return org


PERSONA_ID = ["input", "personaId"]


@strawberry.input(description="Which persona.")
class PersonaRefInput:
    persona_id: strawberry.ID


@strawberry.type(description="The persona as the mutation left it, or why it refused.")
class PersonaPayload:
    persona: Persona | None
    user_errors: list[UserError]


@strawberry.input(description="Custom attributes to set (added or overwritten) and keys to remove.")
class UpdateCustomAttributesInput:
    persona_id: strawberry.ID
    set: list[AttributeInput] | None = None
    remove: list[str] | None = None


@strawberry.input(description="Tags to add and to remove.")
class SetTagsInput:
    persona_id: strawberry.ID
    add: list[str] | None = None
    remove: list[str] | None = None


@strawberry.input(description="The persona's own traits; a field left out stays as it is, null clears it.")
class UpdatePersonaInput:
    persona_id: strawberry.ID
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    email: str | None = strawberry.field(default=strawberry.UNSET, description="Trimmed and lower-cased.")
    phone: str | None = strawberry.field(
        default=strawberry.UNSET, description="Any common format, read in the organization's region; kept in E.164."
    )
    birthday: dt.date | None = strawberry.UNSET
    favorite_store_id: strawberry.ID | None = strawberry.UNSET

    def changes(self) -> dict[str, Any]:
        """The traits sent, with the store id parsed; fields left out are absent."""
        found: dict[str, Any] = {}
        for name in ("first_name", "last_name", "email", "phone", "birthday"):
            value = getattr(self, name)
            if value is not strawberry.UNSET:
                found[name] = value
        if self.favorite_store_id is not strawberry.UNSET:
            store = self.favorite_store_id
            found["favorite_store_id"] = (
                None if store is None else input_id(store, "Store", ["input", "favoriteStoreId"])
            )
        return found


@strawberry.input(description="Consent on one channel, recorded with source STAFF.")
class SetOptInInput:
    persona_id: strawberry.ID
    channel: Channel
    status: OptInStatus


async def _payload(info: Info, outcome: MutationOutcome[uuid.UUID]) -> PersonaPayload:
    return PersonaPayload(persona=await persona_after(info, outcome.value), user_errors=outcome.user_errors)


@strawberry.type
class ProfileMutation:
    @strawberry.mutation(description="Hide a persona from the Personas page; it accrues no points while archived.")
    async def archive_persona(self, info: Info, input: PersonaRefInput) -> PersonaPayload:
        org_id = info.context.viewer.org_id

        async def work(session: AsyncSession) -> uuid.UUID:
            persona_id = input_id(input.persona_id, "Persona", PERSONA_ID)
            return (await profile.archive_persona(session, org_id, persona_id)).id

        return await _payload(info, await run_mutation(info, "archivePersona", work, targets=[input.persona_id]))

    @strawberry.mutation(
        description="Bring an archived persona back; credit what its orders placed meanwhile would have earned."
    )
    async def restore_persona(self, info: Info, input: PersonaRefInput) -> PersonaPayload:
        ctx = info.context

        async def work(session: AsyncSession) -> uuid.UUID:
            persona_id = input_id(input.persona_id, "Persona", PERSONA_ID)
            org = await organization(session, ctx.viewer.org_id)
            restored = await profile.restore_persona(session, org, persona_id, actor=ctx.viewer.name)
            return restored.persona.id

        return await _payload(info, await run_mutation(info, "restorePersona", work, targets=[input.persona_id]))

    @strawberry.mutation(description="Set and remove custom attributes.")
    async def update_custom_attributes(self, info: Info, input: UpdateCustomAttributesInput) -> PersonaPayload:
        org_id = info.context.viewer.org_id

        async def work(session: AsyncSession) -> uuid.UUID:
            persona_id = input_id(input.persona_id, "Persona", PERSONA_ID)
            pairs = [(a.key, a.value) for a in input.set or []]
            persona = await profile.update_custom_attributes(session, org_id, persona_id, pairs, input.remove or [])
            return persona.id

        outcome = await run_mutation(info, "updateCustomAttributes", work, targets=[input.persona_id])
        return await _payload(info, outcome)

    @strawberry.mutation(description="Add and remove tags.")
    async def set_tags(self, info: Info, input: SetTagsInput) -> PersonaPayload:
        org_id = info.context.viewer.org_id

        async def work(session: AsyncSession) -> uuid.UUID:
            persona_id = input_id(input.persona_id, "Persona", PERSONA_ID)
            return (await profile.set_tags(session, org_id, persona_id, input.add or [], input.remove or [])).id

        return await _payload(info, await run_mutation(info, "setTags", work, targets=[input.persona_id]))

    @strawberry.mutation(
        description="Record staff-collected consent on one channel. Push opt-ins come only from the customer's device."
    )
    async def set_opt_in(self, info: Info, input: SetOptInInput) -> PersonaPayload:
        org_id = info.context.viewer.org_id

        async def work(session: AsyncSession) -> uuid.UUID:
            persona_id = input_id(input.persona_id, "Persona", PERSONA_ID)
            return (await profile.set_opt_in(session, org_id, persona_id, input.channel, input.status)).id

        return await _payload(info, await run_mutation(info, "setOptIn", work, targets=[input.persona_id]))

    @strawberry.mutation(
        description=(
            "Edit the persona's own traits; a phone or email that belongs to another persona is DUPLICATE "
            "(merge them instead)."
        )
    )
    async def update_persona(self, info: Info, input: UpdatePersonaInput) -> PersonaPayload:
        org_id = info.context.viewer.org_id

        async def work(session: AsyncSession) -> uuid.UUID:
            persona_id = input_id(input.persona_id, "Persona", PERSONA_ID)
            changes = input.changes()
            org = await organization(session, org_id)
            return (await profile.update_persona(session, org, persona_id, changes)).id

        return await _payload(info, await run_mutation(info, "updatePersona", work, targets=[input.persona_id]))
