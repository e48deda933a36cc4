"""Points mutations: adjust, award, redeem a discount, reverse a redemption,
and create a discount (resolvers/points_actions.py does the work)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from models import Discount as DiscountRow
from models import PointsEntry as PointsEntryRow
from models import Redemption as RedemptionRow
from resolvers import points_actions
from resolvers.points_actions import PointsMove
from schema.context import Info
from schema.discounts import Discount
from schema.enums import PointsEntryKind
from schema.history import PointsEntry, Redemption
from schema.mutations import MutationOutcome, UserError, run_mutation
from schema.persona import Persona
from schema.profile_mutations import PERSONA_ID, input_id, persona_after

IDEMPOTENCY_KEY = "Replaying the same key returns the first result and changes nothing."


@strawberry.input(description="A staff correction of a persona's points.")
class AdjustPointsInput:
    persona_id: strawberry.ID
    delta: int = strawberry.field(description="Positive or negative; the balance may not go below zero.")
    note: str = strawberry.field(description="Why: required, and shown in the ledger.")
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


@strawberry.type(description="The persona and the ledger entry an adjustment wrote, or why it refused.")
class AdjustPointsPayload:
    persona: Persona | None
    entry: PointsEntry | None
    user_errors: list[UserError]


@strawberry.input(description="Points given by a campaign, a flow, a collectible, an audience or a legacy import.")
class AwardPointsInput:
    persona_id: strawberry.ID
    kind: PointsEntryKind = strawberry.field(
        description="One of CAMPAIGN_GIFT, FLOW_GIFT, COLLECTIBLE, AUDIENCE_BOOST, LEGACY_IMPORT."
    )
    points: int = strawberry.field(description="Positive.")
    note: str | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


@strawberry.type(description="The persona and the ledger entry an award wrote, or why it refused.")
class AwardPointsPayload:
    persona: Persona | None
    entry: PointsEntry | None
    user_errors: list[UserError]


@strawberry.input(description="Spend a persona's points on a discount that is active now.")
class RedeemDiscountInput:
    persona_id: strawberry.ID
    discount_id: strawberry.ID
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


@strawberry.input(description="Give a redemption's points back.")
class ReverseRedemptionInput:
    redemption_id: strawberry.ID
    note: str | None = None


@strawberry.type(description="The persona and the redemption, or why it refused.")
class RedeemDiscountPayload:
    persona: Persona | None
    redemption: Redemption | None
    user_errors: list[UserError]


@strawberry.input(description="A new discount; without a window it is active from now on.")
class CreateDiscountInput:
    name: str
    points_cost: int = strawberry.field(description="Positive.")
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = strawberry.field(default=None, description="After startsAt.")


@strawberry.type(description="The discount created, or why it was refused.")
class DiscountPayload:
    discount: Discount | None
    user_errors: list[UserError]


async def _rows(session: AsyncSession, org_id: uuid.UUID, move: PointsMove) -> tuple[PointsMove, Any, Any]:
    """The move with its entry and redemption rows, read in the mutation's transaction."""
    entry = await session.get(PointsEntryRow, (org_id, move.entry_id)) if move.entry_id else None
    redemption = await session.get(RedemptionRow, (org_id, move.redemption_id)) if move.redemption_id else None
    return move, entry, redemption


Moved = tuple[PointsMove, Any, Any]


EntryPayload = TypeVar("EntryPayload", AdjustPointsPayload, AwardPointsPayload)


async def _entry_payload(info: Info, outcome: MutationOutcome[Moved], payload: type[EntryPayload]) -> EntryPayload:
    if outcome.value is None:
        return payload(persona=None, entry=None, user_errors=outcome.user_errors)
    move, entry, _ = outcome.value
    return payload(
        persona=await persona_after(info, move.persona_id),
        entry=PointsEntry.from_row(entry) if entry is not None else None,
        user_errors=[],
    )


async def _redemption_payload(info: Info, outcome: MutationOutcome[Moved]) -> RedeemDiscountPayload:
    if outcome.value is None:
        return RedeemDiscountPayload(persona=None, redemption=None, user_errors=outcome.user_errors)
    move, _, redemption = outcome.value
    return RedeemDiscountPayload(
        persona=await persona_after(info, move.persona_id),
        redemption=Redemption.from_row(redemption) if redemption is not None else None,
        user_errors=[],
    )


@strawberry.type
class PointsMutation:
    @strawberry.mutation(description="Add or take points by hand, with a note; the entry records who did it.")
    async def adjust_points(self, info: Info, input: AdjustPointsInput) -> AdjustPointsPayload:
        viewer = info.context.viewer

        async def work(session: AsyncSession) -> Moved:
            move = await points_actions.adjust_points(
                session,
                org_id=viewer.org_id,
                persona_id=input_id(input.persona_id, "Persona", PERSONA_ID),
                delta=input.delta,
                note=input.note,
                actor=viewer.name,
                idempotency_key=input.idempotency_key,
            )
            return await _rows(session, viewer.org_id, move)

        outcome = await run_mutation(info, "adjustPoints", work, targets=[input.persona_id])
        return await _entry_payload(info, outcome, AdjustPointsPayload)

    @strawberry.mutation(description="Give points of a gift kind (campaign, flow, collectible, audience, legacy).")
    async def award_points(self, info: Info, input: AwardPointsInput) -> AwardPointsPayload:
        viewer = info.context.viewer

        async def work(session: AsyncSession) -> Moved:
            move = await points_actions.award_points(
                session,
                org_id=viewer.org_id,
                persona_id=input_id(input.persona_id, "Persona", PERSONA_ID),
                kind=input.kind,
                points=input.points,
                note=input.note,
                actor=viewer.name,
                idempotency_key=input.idempotency_key,
            )
            return await _rows(session, viewer.org_id, move)

        outcome = await run_mutation(info, "awardPoints", work, targets=[input.persona_id])
        return await _entry_payload(info, outcome, AwardPointsPayload)

    @strawberry.mutation(
        description="Spend points on a discount active now: atomic, so the balance never goes below zero."
    )
    async def redeem_discount(self, info: Info, input: RedeemDiscountInput) -> RedeemDiscountPayload:
        viewer = info.context.viewer

        async def work(session: AsyncSession) -> Moved:
            persona_id = input_id(input.persona_id, "Persona", PERSONA_ID)
            discount_id = input_id(input.discount_id, "Discount", ["input", "discountId"])
            move = await points_actions.redeem_discount(
                session,
                org_id=viewer.org_id,
                persona_id=persona_id,
                discount_id=discount_id,
                actor=viewer.name,
                idempotency_key=input.idempotency_key,
            )
            return await _rows(session, viewer.org_id, move)

        targets = [input.persona_id, input.discount_id]
        return await _redemption_payload(info, await run_mutation(info, "redeemDiscount", work, targets=targets))

    @strawberry.mutation(description="Give a redemption's points back: status REVERSED, with a balancing entry.")
    async def reverse_redemption(self, info: Info, input: ReverseRedemptionInput) -> RedeemDiscountPayload:
        viewer = info.context.viewer

        async def work(session: AsyncSession) -> Moved:
            move = await points_actions.reverse_redemption(
                session,
                org_id=viewer.org_id,
                redemption_id=input_id(input.redemption_id, "Redemption", ["input", "redemptionId"]),
                note=input.note,
                actor=viewer.name,
            )
            return await _rows(session, viewer.org_id, move)

        outcome = await run_mutation(info, "reverseRedemption", work, targets=[input.redemption_id])
        return await _redemption_payload(info, outcome)

    @strawberry.mutation(description="Create a discount personas can buy with points.")
    async def create_discount(self, info: Info, input: CreateDiscountInput) -> DiscountPayload:
        org_id = info.context.viewer.org_id

        async def work(session: AsyncSession) -> DiscountRow:
            return await points_actions.create_discount(
                session,
                org_id=org_id,
                name=input.name,
                points_cost=input.points_cost,
                starts_at=input.starts_at,
                ends_at=input.ends_at,
            )

        outcome = await run_mutation(info, "createDiscount", work)
        discount = Discount.from_row(outcome.value) if outcome.value is not None else None
        return DiscountPayload(discount=discount, user_errors=outcome.user_errors)
