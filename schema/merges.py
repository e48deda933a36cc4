"""Manual merges: mergePersonas, undoMerge and the mergePreview query
(resolvers/merges.py is the engine)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from models import Merge as MergeRow
from models import Persona as PersonaRow
from models.enums import MergeKind
from permissions.fields import guarded
from permissions.matrix import Permission
from resolvers import merges
from resolvers.errors import NotFound
from resolvers.errors import UserError as DomainError
from schema.context import Info
from schema.history import Merge
from schema.ids import parse_global_id
from schema.mutations import MutationOutcome, UserError, run_mutation
from schema.persona import Persona
from schema.profile_mutations import input_id, persona_after


@strawberry.input(description="Which persona stays and which is folded into it.")
class MergePersonasInput:
    survivor_id: strawberry.ID = strawberry.field(description="The persona that stays.")
    merged_id: strawberry.ID = strawberry.field(description="The persona folded into the survivor.")


@strawberry.input(description="The merge to undo.")
class UndoMergeInput:
    merge_id: strawberry.ID


@strawberry.type(description="The survivor and the merge, or why it was refused.")
class MergePersonasPayload:
    persona: Persona | None
    merge: Merge | None
    user_errors: list[UserError]


@strawberry.type(description="What merging two personas would do, without doing it.")
class MergePreview:
    survivor: Persona
    merged: Persona
    resulting_points: int = strawberry.field(description="Points balance of the survivor after the merge.")
    orders_moved: int = strawberry.field(description="Orders that would move to the survivor.")
    conflicting_attributes: list[str] = strawberry.field(
        description="Attribute keys present on both with different values (the survivor's value is kept)."
    )
    blockers: list[UserError] = strawberry.field(
        description="Why the merge would be refused, if it would be; empty when it can go ahead."
    )


def _at_input(error: DomainError) -> DomainError:
    """The engine names the argument (['mergedId']); a mutation's path starts at its input."""
    field = error.field if error.field is None or error.field[:1] == ["input"] else ["input", *error.field]
    return DomainError(error.code, error.message, field)


async def _merge_target(session: AsyncSession, org_id: uuid.UUID, value: str, name: str) -> PersonaRow:
    field = ["input", name]
    persona = await session.get(PersonaRow, (org_id, input_id(value, "Persona", field)))
    if persona is None:
        raise DomainError("NOT_FOUND", "No persona with that id.", field)
    return persona


async def _payload(info: Info, outcome: MutationOutcome[Any]) -> MergePersonasPayload:
    if outcome.value is None:
        return MergePersonasPayload(persona=None, merge=None, user_errors=outcome.user_errors)
    merge = outcome.value
    return MergePersonasPayload(
        persona=await persona_after(info, merge.survivor_id), merge=Merge.from_row(merge), user_errors=[]
    )


@strawberry.type
class MergeMutation:
    @strawberry.mutation(description="Fold one persona into another, losslessly; the merged one stays as a tombstone.")
    async def merge_personas(self, info: Info, input: MergePersonasInput) -> MergePersonasPayload:
        viewer = info.context.viewer

        async def work(session: AsyncSession) -> MergeRow:
            survivor = await _merge_target(session, viewer.org_id, input.survivor_id, "survivorId")
            merged = await _merge_target(session, viewer.org_id, input.merged_id, "mergedId")
            try:
                return await merges.merge_personas(
                    session,
                    org_id=viewer.org_id,
                    survivor=survivor,
                    merged=merged,
                    kind=MergeKind.MANUAL,
                    reason=None,
                    actor=viewer.name,
                )
            except DomainError as e:
                raise _at_input(e) from None

        targets = [input.survivor_id, input.merged_id]
        return await _payload(info, await run_mutation(info, "mergePersonas", work, targets=targets))

    @strawberry.mutation(
        description="Give a merged persona back everything the merge took; the survivor keeps what it gained since."
    )
    async def undo_merge(self, info: Info, input: UndoMergeInput) -> MergePersonasPayload:
        viewer = info.context.viewer

        async def work(session: AsyncSession) -> MergeRow:
            field = ["input", "mergeId"]
            merge = await session.get(MergeRow, (viewer.org_id, input_id(input.merge_id, "Merge", field)))
            if merge is None:
                raise DomainError("NOT_FOUND", "No merge with that id.", field)
            try:
                return await merges.undo_merge(session, org_id=viewer.org_id, merge=merge, actor=viewer.name)
            except DomainError as e:
                raise _at_input(e) from None

        return await _payload(info, await run_mutation(info, "undoMerge", work, targets=[input.merge_id]))


async def _preview_target(session: AsyncSession, org_id: uuid.UUID, parsed: tuple[str, uuid.UUID]) -> PersonaRow:
    type_name, id_ = parsed
    persona = await session.get(PersonaRow, (org_id, id_)) if type_name == "Persona" else None
    if persona is None:
        raise NotFound("No persona with that id.")
    return persona


@strawberry.type
class MergeQuery:
    @guarded(Permission.MERGE_PERSONAS, description="What merging these two would do, without doing it.")
    async def merge_preview(
        self, info: Info, survivor_id: strawberry.ID, merged_id: strawberry.ID
    ) -> MergePreview | None:
        org_id = info.context.viewer.org_id
        # Both ids are parsed before either is looked up: a malformed one is BAD_USER_INPUT, whichever it is.
        survivor_key, merged_key = parse_global_id(survivor_id), parse_global_id(merged_id)
        async with info.context.db.read() as conn:
            session = AsyncSession(bind=conn)
            try:
                survivor = await _preview_target(session, org_id, survivor_key)
                merged = await _preview_target(session, org_id, merged_key)
                preview = await merges.preview_merge(session, org_id=org_id, survivor=survivor, merged=merged)
            finally:
                await session.close()
        return MergePreview(
            survivor=Persona.from_row(survivor),
            merged=Persona.from_row(merged),
            resulting_points=preview.resulting_points,
            orders_moved=preview.orders_moved,
            conflicting_attributes=preview.conflicting_attributes,
            blockers=UserError.all_of(preview.blockers),
        )
