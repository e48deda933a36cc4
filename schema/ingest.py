"""ingestContacts and recordOrders: batches from points of sale and other
integrations, one result per row, each row atomic (resolvers/ingest.py and
resolvers/orders.py do the work)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from models import Organization as OrganizationRow
from resolvers import ingest, ingest_batch, orders, orders_batch
from resolvers.errors import ApiError
from resolvers.errors import UserError as DomainError
from resolvers.ingest import ConsentData, ContactData, IngestOutcome
from resolvers.orders import LineData, OrderData, OrderOutcome
from schema.context import Info
from schema.enums import Channel, ConsentSource, OptInStatus
from schema.fast_input import fast_input
from schema.history import Order
from schema.ids import from_global_id
from schema.mutations import UserError, run_mutation
from schema.persona import Persona

# Rows by id, read back after the batch: what the payload shows.
Rows = dict[uuid.UUID, Any]

for enum_class, description in (
    (IngestOutcome, "What became of one contact row."),
    (OrderOutcome, "What became of one order row."),
):
    if not hasattr(enum_class, "__strawberry_definition__"):
        strawberry.enum(enum_class, description=description)


@strawberry.input(description="A custom attribute: a key and its value.")
class AttributeInput:
    key: str
    value: str


@strawberry.input(description="Consent on one channel. Push opt-ins need source DEVICE.")
class ConsentInput:
    channel: Channel
    status: OptInStatus
    source: ConsentSource


@strawberry.input(description="A customer as an integration knows them; a valid phone or email is required.")
class ContactInput:
    source_id: str | None = strawberry.field(
        default=None, description="The integrated system's own id for this customer."
    )
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = strawberry.field(default=None, description="Trimmed and lower-cased; placeholders are ignored.")
    phone: str | None = strawberry.field(
        default=None, description="Any common format; read in the organization's default region."
    )
    birthday: dt.date | None = None
    favorite_store_id: strawberry.ID | None = None
    loyalty_member: bool | None = strawberry.field(
        default=None, description="true enrolls the persona in loyalty; false or null leaves enrollment as it is."
    )
    loyalty_signup_at: dt.datetime | None = None
    attributes: list[AttributeInput] | None = None
    tags: list[str] | None = strawberry.field(default=None, description="Added to the persona's tags.")
    consents: list[ConsentInput] | None = None
    legacy_points: int | None = strawberry.field(
        default=None, description="Imported once per (source, sourceId) as LEGACY_IMPORT."
    )

    def to_data(self, path: list[str]) -> ContactData:
        store_id, errors = _optional_id(self.favorite_store_id, "Store", [*path, "favoriteStoreId"])
        return ContactData(
            source_id=self.source_id,
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email,
            phone=self.phone,
            birthday=self.birthday,
            favorite_store_id=store_id,
            loyalty_member=self.loyalty_member,
            loyalty_signup_at=self.loyalty_signup_at,
            attributes=[(a.key, a.value) for a in self.attributes or []],
            tags=list(self.tags or []),
            consents=[ConsentData(c.channel.value, c.status.value, c.source.value) for c in self.consents or []],
            legacy_points=self.legacy_points,
            input_errors=errors,
        )


@fast_input
@strawberry.input(description="At most 1,000 contacts per call.")
class IngestContactsInput:
    source: str = strawberry.field(description="Where the contacts come from: the integration's name, or RAW_FILE.")
    contacts: list[ContactInput]


@strawberry.type(description="What became of one contact row, by its index in the input.")
class IngestResult:
    index: int
    outcome: IngestOutcome
    persona: Persona | None
    user_errors: list[UserError]


@strawberry.type(description="One result per contact row, in input order.")
class IngestContactsPayload:
    results: list[IngestResult]
    user_errors: list[UserError]


@strawberry.input(description="One line of a ticket.")
class OrderLineInput:
    product: str
    brand: str | None = None
    category: str | None = None
    quantity: int
    unit_price: Decimal


@strawberry.input(description="One point-of-sale ticket and the customer it belongs to.")
class OrderInput:
    external_id: str = strawberry.field(
        description="The point-of-sale ticket id; unique per source. Replays are ignored."
    )
    source: str
    customer: ContactInput
    store_id: strawberry.ID | None = None
    placed_at: dt.datetime
    subtotal: Decimal = strawberry.field(description="Pre-tax: what ORDER points accrue on.")
    tax: Decimal
    total: Decimal = strawberry.field(description="Post-tax.")
    lines: list[OrderLineInput]
    referred_by_number: int | None = strawberry.field(
        default=None, description="The persona number of the friend who referred this customer, if any."
    )

    def to_data(self, path: list[str]) -> OrderData:
        store_id, errors = _optional_id(self.store_id, "Store", [*path, "storeId"])
        return OrderData(
            external_id=self.external_id,
            source=self.source,
            customer=self.customer.to_data([*path, "customer"]),
            placed_at=self.placed_at,
            subtotal=self.subtotal,
            tax=self.tax,
            total=self.total,
            lines=[
                LineData(
                    product=line.product,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    brand=line.brand,
                    category=line.category,
                )
                for line in self.lines
            ],
            store_id=store_id,
            referred_by_number=self.referred_by_number,
            input_errors=errors,
        )


@fast_input
@strawberry.input(description="At most 1,000 orders per call.")
class RecordOrdersInput:
    orders: list[OrderInput]


@strawberry.type(description="What became of one order row, by its index in the input.")
class RecordOrderResult:
    index: int
    outcome: OrderOutcome
    order: Order | None
    persona: Persona | None
    user_errors: list[UserError]


@strawberry.type(description="One result per order row, in input order.")
class RecordOrdersPayload:
    results: list[RecordOrderResult]
    user_errors: list[UserError]


def _optional_id(value: str | None, type_name: str, path: list[str]) -> tuple[uuid.UUID | None, list[DomainError]]:
    """A malformed id fails its row (INVALID at its path), not the whole batch."""
    if value is None:
        return None, []
    try:
        return from_global_id(value, type_name), []
    except ApiError as e:
        return None, [DomainError("INVALID", e.message, path)]


async def _organization(session: AsyncSession, org_id: uuid.UUID) -> OrganizationRow:
    org = await session.get(OrganizationRow, org_id)
    assert org is not None, "the viewer's organization exists"
    return org


def _persona(rows: dict[uuid.UUID, Any], persona_id: uuid.UUID | None) -> Persona | None:
    row = rows.get(persona_id) if persona_id is not None else None
    return Persona.from_row(row) if row is not None else None


@strawberry.type
class IngestMutation:
    @strawberry.mutation(
        description="Create or update personas from an integration's contacts: one result per row, each row atomic."
    )
    async def ingest_contacts(self, info: Info, input: IngestContactsInput) -> IngestContactsPayload:
        ctx = info.context
        path = ["input", "contacts"]
        contacts = [c.to_data([*path, str(i)]) for i, c in enumerate(input.contacts)]

        async def work(session: AsyncSession) -> tuple[list[ingest_batch.RowResult], Rows]:
            ingest.check_batch_size(len(contacts), path)
            ingest.check_source(input.source, ["input", "source"])
            org = await _organization(session, ctx.viewer.org_id)
            results = await ingest_batch.ingest_contacts(
                session,
                org,
                input.source,
                contacts,
                actor=ctx.viewer.name,
                path=path,
                number_block=ctx.settings.persona_number_block,
            )
            carried = ((r.persona_id, r.row) for r in results)
            return results, await ingest_batch.payload_rows(session, org.id, carried, ingest.persona_rows)

        outcome = await run_mutation(info, "ingestContacts", work)
        if outcome.value is None:
            return IngestContactsPayload(results=[], user_errors=outcome.user_errors)
        results, rows = outcome.value
        return IngestContactsPayload(
            results=[
                IngestResult(
                    index=i,
                    outcome=r.outcome,
                    persona=_persona(rows, r.persona_id),
                    user_errors=UserError.all_of(r.errors),
                )
                for i, r in enumerate(results)
            ],
            user_errors=[],
        )

    @strawberry.mutation(
        description="Record point-of-sale orders, idempotent on (source, externalId), with accrual: one result per row."
    )
    async def record_orders(self, info: Info, input: RecordOrdersInput) -> RecordOrdersPayload:
        ctx = info.context
        path = ["input", "orders"]
        data = [o.to_data([*path, str(i)]) for i, o in enumerate(input.orders)]

        async def work(
            session: AsyncSession,
        ) -> tuple[list[orders_batch.OrderRowResult], dict[uuid.UUID, Any], dict[uuid.UUID, Any]]:
            ingest.check_batch_size(len(data), path)
            org = await _organization(session, ctx.viewer.org_id)
            results = await orders_batch.record_orders(
                session, org, data, actor=ctx.viewer.name, path=path, number_block=ctx.settings.persona_number_block
            )
            found = ((r.persona_id, r.persona_row) for r in results)
            personas = await ingest_batch.payload_rows(session, org.id, found, ingest.persona_rows)
            found = ((r.order_id, r.order_row) for r in results)
            recorded = await ingest_batch.payload_rows(session, org.id, found, orders.order_rows)
            return results, personas, recorded

        outcome = await run_mutation(info, "recordOrders", work)
        if outcome.value is None:
            return RecordOrdersPayload(results=[], user_errors=outcome.user_errors)
        results, personas, recorded = outcome.value
        return RecordOrdersPayload(
            results=[_order_result(i, r, personas, recorded) for i, r in enumerate(results)], user_errors=[]
        )


def _order_result(
    index: int,
    result: orders_batch.OrderRowResult,
    personas: dict[uuid.UUID, Any],
    recorded: dict[uuid.UUID, Any],
) -> RecordOrderResult:
    row = recorded.get(result.order_id) if result.order_id is not None else None
    return RecordOrderResult(
        index=index,
        outcome=result.outcome,
        order=Order.from_row(row) if row is not None else None,
        persona=_persona(personas, result.persona_id),
        user_errors=UserError.all_of(result.errors),
    )


__all__: Sequence[str] = [
    "AttributeInput",
    "ConsentInput",
    "ContactInput",
    "IngestContactsInput",
    "IngestContactsPayload",
    "IngestMutation",
    "IngestResult",
    "OrderInput",
    "OrderLineInput",
    "RecordOrderResult",
    "RecordOrdersInput",
    "RecordOrdersPayload",
]
