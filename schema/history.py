"""The History tab: a persona's points entries, orders, messages, redemptions,
merges, surveys, actions and pixel events as newest-first connections, and
the timeline that merges them all into one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import strawberry

from permissions.fields import guarded
from permissions.matrix import Permission
from resolvers import history
from resolvers.history import HistoryKind, TimelineItem
from resolvers.pagination import Page, PageRequest
from schema.context import Info
from schema.history_nodes import (
    Merge,
    Message,
    Order,
    OrderLine,
    PersonaAction,
    PixelEvent,
    PointsEntry,
    Redemption,
    SurveyAnswer,
    SurveySubmission,
)
from schema.relay import Connection, PageInfo, asks_total_count, page_selection

if not hasattr(HistoryKind, "__strawberry_definition__"):
    strawberry.enum(HistoryKind, name="TimelineKind", description="A kind of history row, to filter the timeline.")
TimelineKind = HistoryKind

PointsEntryConnection = Connection[PointsEntry]
OrderConnection = Connection[Order]
MessageConnection = Connection[Message]
RedemptionConnection = Connection[Redemption]
MergeConnection = Connection[Merge]
SurveySubmissionConnection = Connection[SurveySubmission]
PersonaActionConnection = Connection[PersonaAction]
PixelEventConnection = Connection[PixelEvent]

TimelineEvent = Annotated[
    PointsEntry | Order | Message | Redemption | Merge | SurveySubmission | PersonaAction | PixelEvent,
    strawberry.union("TimelineEvent", description="Anything that happened to a persona."),
]

# How each kind's row becomes its node, for the timeline.
TIMELINE_NODES: dict[HistoryKind, Callable[[Any], Any]] = {
    HistoryKind.POINTS: PointsEntry.from_row,
    HistoryKind.ORDER: Order.from_row,
    HistoryKind.MESSAGE: Message.from_row,
    HistoryKind.REDEMPTION: Redemption.from_row,
    HistoryKind.MERGE: Merge.from_row,
    HistoryKind.SURVEY: SurveySubmission.from_row,
    HistoryKind.ACTION: PersonaAction.from_row,
    HistoryKind.PIXEL_EVENT: PixelEvent.from_row,
}


@strawberry.type(description="One event of the timeline with the cursor to continue from it.")
class TimelineEdge:
    cursor: str
    node: TimelineEvent


@strawberry.type(description="Every kind of history in one newest-first list.")
class TimelineConnection:
    edges: list[TimelineEdge]
    nodes: list[TimelineEvent]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[TimelineItem]) -> TimelineConnection:
        nodes = [TIMELINE_NODES[item.kind](item.row) for item in page.items]
        return cls(
            edges=[TimelineEdge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
            nodes=nodes,
            page_info=PageInfo.of(page),  # type: ignore[arg-type]
        )


PageArgs = tuple[int | None, str | None, int | None, str | None]


async def timeline(
    info: Info, persona_id: uuid.UUID, kinds: list[HistoryKind] | None, page_args: PageArgs
) -> TimelineConnection:
    """Persona.timeline: first/after as the contract has it, and last/before to walk back."""
    request = PageRequest.from_args(*page_args)
    async with info.context.db.read() as conn:
        page = await history.timeline_page(conn, info.context.viewer.org_id, persona_id, request, kinds)
    return TimelineConnection.of(page)


NodeT = TypeVar("NodeT")


async def _connection(
    info: Info,
    persona_id: uuid.UUID,
    kind: HistoryKind,
    connection: type[Connection[NodeT]],
    to_node: Callable[[Any], NodeT],
    page_args: PageArgs,
) -> Connection[NodeT]:
    request = PageRequest.from_args(*page_args)
    db, org_id = info.context.db, info.context.viewer.org_id
    # Asked for now, before the page is awaited: sibling connections resolve in the same
    # tick, so the counts of every connection of the card go in one batch (one statement).
    counts = info.context.loaders.history_count
    counted = counts.load((persona_id, kind)) if asks_total_count(info) else None
    # Under the compiled executor, on PostgreSQL, the nodes come built as JSON when the
    # selection allows (resolvers/history_json.py): a third of a card's CPU otherwise.
    wanted = page_selection(info) if info.context.compiled and not db.is_sqlite else None
    answered = None
    if wanted is not None:
        answered = await history.history_json_page(db.select, org_id, persona_id, kind, request, wanted.nodes)
    page = (
        answered if answered is not None else await history.history_page(db.select, org_id, persona_id, kind, request)
    )
    # The count came in the page's statement: taken now, totalCount is answered at once,
    # without a wait (and a task) of its own.
    total = await counted if counted is not None else None

    async def count() -> int:
        return total if total is not None else await counts.load((persona_id, kind))

    if answered is not None and wanted is not None:
        return connection.answered(answered, count, wanted.edges)
    return connection.of(page, to_node, count)


@strawberry.type(description="The History tab: each kind of a persona's history, newest first.")
class PersonaHistory:
    persona_id: strawberry.Private[uuid.UUID]

    @guarded(Permission.VIEW_POINTS, description="Points ledger entries, newest first.")
    async def points(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> PointsEntryConnection | None:
        args = (first, after, last, before)
        return await _connection(
            info, self.persona_id, HistoryKind.POINTS, PointsEntryConnection, PointsEntry.from_row, args
        )

    @guarded(Permission.VIEW_SHOPPING, description="Orders, newest placed first.")
    async def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> OrderConnection | None:
        args = (first, after, last, before)
        return await _connection(info, self.persona_id, HistoryKind.ORDER, OrderConnection, Order.from_row, args)

    @guarded(Permission.VIEW_ENGAGEMENT, description="Messages to and from the customer, newest first.")
    async def messages(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> MessageConnection | None:
        args = (first, after, last, before)
        return await _connection(info, self.persona_id, HistoryKind.MESSAGE, MessageConnection, Message.from_row, args)

    @guarded(Permission.VIEW_POINTS, description="Discount redemptions, newest first.")
    async def redemptions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> RedemptionConnection | None:
        args = (first, after, last, before)
        return await _connection(
            info, self.persona_id, HistoryKind.REDEMPTION, RedemptionConnection, Redemption.from_row, args
        )

    @guarded(Permission.VIEW_PROFILE, description="Merges this persona survived or was merged away by, newest first.")
    async def merges(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> MergeConnection | None:
        args = (first, after, last, before)
        return await _connection(info, self.persona_id, HistoryKind.MERGE, MergeConnection, Merge.from_row, args)

    @guarded(Permission.VIEW_ENGAGEMENT, description="Survey submissions, newest first.")
    async def surveys(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> SurveySubmissionConnection | None:
        args = (first, after, last, before)
        return await _connection(
            info, self.persona_id, HistoryKind.SURVEY, SurveySubmissionConnection, SurveySubmission.from_row, args
        )

    @guarded(Permission.VIEW_ENGAGEMENT, description="Campaign interactions, newest first.")
    async def actions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> PersonaActionConnection | None:
        args = (first, after, last, before)
        return await _connection(
            info, self.persona_id, HistoryKind.ACTION, PersonaActionConnection, PersonaAction.from_row, args
        )

    @guarded(Permission.VIEW_ENGAGEMENT, description="Tracking-pixel events, newest first.")
    async def pixel_events(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> PixelEventConnection | None:
        args = (first, after, last, before)
        return await _connection(
            info, self.persona_id, HistoryKind.PIXEL_EVENT, PixelEventConnection, PixelEvent.from_row, args
        )


__all__ = [
    "Merge",
    "MergeConnection",
    "Message",
    "MessageConnection",
    "Order",
    "OrderConnection",
    "OrderLine",
    "PersonaAction",
    "PersonaActionConnection",
    "PersonaHistory",
    "PixelEvent",
    "PixelEventConnection",
    "PointsEntry",
    "PointsEntryConnection",
    "Redemption",
    "RedemptionConnection",
    "SurveyAnswer",
    "SurveySubmission",
    "SurveySubmissionConnection",
    "TimelineConnection",
    "TimelineEdge",
    "TimelineEvent",
    "TimelineKind",
    "timeline",
]
