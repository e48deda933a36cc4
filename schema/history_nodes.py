"""The nodes of the History tab: points entries, orders and their lines,
messages, redemptions, merges, survey submissions, actions and pixel events.
Money is exact (Decimal from integer cents); relations come from loaders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from resolvers.amounts import cents_to_decimal
from schema.context import Info
from schema.discounts import Discount
from schema.enums import (
    MergeKind,
    MessageChannel,
    MessageDirection,
    PersonaActionKind,
    PointsEntryKind,
    RedemptionStatus,
    SurveyStatus,
)
from schema.ids import to_global_id
from schema.persona_general import Store
from schema.relay import Node

if TYPE_CHECKING:
    from schema.persona import Persona


def _gid(type_name: str, row: Any) -> strawberry.ID:
    return strawberry.ID(to_global_id(type_name, row.id))


@strawberry.type(description="One line of an order: what was bought, how many and at what price.")
class OrderLine:
    product: str
    brand: str | None
    category: str | None
    quantity: int
    unit_price: Decimal

    @classmethod
    def from_row(cls, row: Any) -> OrderLine:
        return cls(
            product=row.product,
            brand=row.brand,
            category=row.category,
            quantity=row.quantity,
            unit_price=cents_to_decimal(row.unit_price_cents),
        )


@strawberry.type(description="A point-of-sale order.")
class Order(Node):
    row: strawberry.Private[Any]
    external_id: str = strawberry.field(description="The point-of-sale ticket id.")
    placed_at: dt.datetime
    subtotal: Decimal = strawberry.field(description="Pre-tax.")
    tax: Decimal
    total: Decimal = strawberry.field(description="Post-tax.")
    item_count: int = strawberry.field(description="The sum of the lines' quantities.")

    @classmethod
    def from_row(cls, row: Any) -> Order:
        return cls(
            row=row,
            id=_gid("Order", row),
            external_id=row.external_id,
            placed_at=row.placed_at,
            subtotal=cents_to_decimal(row.subtotal_cents),
            tax=cents_to_decimal(row.tax_cents),
            total=cents_to_decimal(row.total_cents),
            item_count=row.item_count,
        )

    @strawberry.field(description="Where it was bought, when the point of sale said.")
    async def store(self, info: Info) -> Store | None:
        if self.row.store_id is None:
            return None
        row = await info.context.loaders.store.load(self.row.store_id)
        return Store.from_row(row) if row is not None else None

    @strawberry.field(description="What was bought, in ticket order.")
    async def lines(self, info: Info) -> list[OrderLine]:
        return [OrderLine.from_row(r) for r in await info.context.loaders.order_lines_by_order.load(self.row.id)]

    @strawberry.field(description="Points this order earned (ORDER + VISIT + AUDIENCE_BOOST entries tied to it).")
    async def points_earned(self, info: Info) -> int:
        return await info.context.loaders.points_earned_by_order.load(self.row.id)


@strawberry.type(description="A redemption of a discount with points.")
class Redemption(Node):
    row: strawberry.Private[Any]
    discount_name: str = strawberry.field(description="The discount's name when it was redeemed.")
    points: int = strawberry.field(description="Points spent.")
    status: RedemptionStatus
    redeemed_at: dt.datetime
    actor: str | None = strawberry.field(description="The staff member or key that redeemed it.")

    @classmethod
    def from_row(cls, row: Any) -> Redemption:
        return cls(
            row=row,
            id=_gid("Redemption", row),
            discount_name=row.discount_name,
            points=row.points,
            status=RedemptionStatus(row.status),
            redeemed_at=row.redeemed_at,
            actor=row.actor,
        )

    @strawberry.field(description="The discount redeemed, as it is now.")
    async def discount(self, info: Info) -> Discount:
        row = await info.context.loaders.discount.load(self.row.discount_id)
        assert row is not None, "a redemption's discount is kept by a foreign key"
        return Discount.from_row(row)


@strawberry.type(description="One entry of the points ledger.")
class PointsEntry(Node):
    row: strawberry.Private[Any]
    kind: PointsEntryKind
    delta: int = strawberry.field(description="Points added (positive) or taken (negative).")
    balance_after: int = strawberry.field(description="Balance right after this entry.")
    note: str | None
    actor: str | None = strawberry.field(
        description="Name of the staff member or key that made it, for STAFF_ADJUSTMENT."
    )
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> PointsEntry:
        return cls(
            row=row,
            id=_gid("PointsEntry", row),
            kind=PointsEntryKind(row.kind),
            delta=row.delta,
            balance_after=row.balance_after,
            note=row.note,
            actor=row.actor,
            created_at=row.created_at,
        )

    @strawberry.field(description="The order that earned it, for order-related entries.")
    async def order(self, info: Info) -> Order | None:
        if self.row.order_id is None:
            return None
        row = await info.context.loaders.order.load(self.row.order_id)
        return Order.from_row(row) if row is not None else None

    @strawberry.field(description="The redemption that spent it, for REDEMPTION entries.")
    async def redemption(self, info: Info) -> Redemption | None:
        if self.row.redemption_id is None:
            return None
        row = await info.context.loaders.redemption.load(self.row.redemption_id)
        return Redemption.from_row(row) if row is not None else None


@strawberry.type(description="A message to or from the customer.")
class Message(Node):
    direction: MessageDirection
    channel: MessageChannel
    body: str
    campaign: str | None
    sent_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> Message:
        return cls(
            id=_gid("Message", row),
            direction=MessageDirection(row.direction),
            channel=MessageChannel(row.channel),
            body=row.body,
            campaign=row.campaign,
            sent_at=row.sent_at,
        )


@strawberry.type(description="A merge of one persona into another.")
class Merge(Node):
    row: strawberry.Private[Any]
    kind: MergeKind
    merged_number: int = strawberry.field(description="The number of the persona that was merged away.")
    reason: str | None = strawberry.field(description="What matched, for AUTOMATIC merges, e.g. 'phone +15555550123'.")
    actor: str | None
    merged_at: dt.datetime
    undone_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Merge:
        return cls(
            row=row,
            id=_gid("Merge", row),
            kind=MergeKind(row.kind),
            merged_number=row.merged_number,
            reason=row.reason,
            actor=row.actor,
            merged_at=row.merged_at,
            undone_at=row.undone_at,
        )

    @strawberry.field(
        description='How many rows of each kind moved to the survivor, e.g. {"orders": 3}; ids and values stay private.'
    )
    def moved_counts(self) -> JSON:
        rows = (self.row.moved or {}).get("rows", {})
        counts = {table: len(ids) for table, ids in rows.items() if ids}
        counts["identity_keys"] = len((self.row.moved or {}).get("identity_keys", []))
        return JSON(counts)

    @strawberry.field(description="The persona that stayed.")
    async def survivor(self, info: Info) -> Annotated[Persona, strawberry.lazy("schema.persona")]:
        from schema.persona import Persona  # persona.py imports this module

        row = await info.context.loaders.persona_by_id.load(self.row.survivor_id)
        assert row is not None, "a merge's survivor is kept by a foreign key"
        return Persona.from_row(row)


@strawberry.type(description="One question of a survey and the customer's answer.")
class SurveyAnswer:
    question: str
    answer: str | None


@strawberry.type(description="A survey the customer filled in.")
class SurveySubmission(Node):
    survey_name: str
    status: SurveyStatus
    answers: list[SurveyAnswer]
    submitted_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> SurveySubmission:
        return cls(
            id=_gid("SurveySubmission", row),
            survey_name=row.survey_name,
            status=SurveyStatus(row.status),
            answers=[SurveyAnswer(question=a["question"], answer=a.get("answer")) for a in row.answers],
            submitted_at=row.submitted_at,
        )


@strawberry.type(description="A campaign interaction: a message received, opened or clicked, a page visited.")
class PersonaAction(Node):
    kind: PersonaActionKind
    campaign: str | None
    detail: str | None
    occurred_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> PersonaAction:
        return cls(
            id=_gid("PersonaAction", row),
            kind=PersonaActionKind(row.kind),
            campaign=row.campaign,
            detail=row.detail,
            occurred_at=row.occurred_at,
        )


@strawberry.type(description="An event the tracking pixel saw on one of the organization's sites.")
class PixelEvent(Node):
    site: str
    event: str
    url: str | None
    occurred_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> PixelEvent:
        return cls(id=_gid("PixelEvent", row), site=row.site, event=row.event, url=row.url, occurred_at=row.occurred_at)
