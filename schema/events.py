"""recordEvents (messages, surveys, actions and pixel events from integrated
systems) and sendLink (the wallet or refer-a-friend link, by text or email)."""

from __future__ import annotations

import datetime as dt

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from models import Organization as OrganizationRow
from resolvers import engagement, events
from resolvers.events import EventData, EventKind, EventOutcome
from resolvers.ingest import check_batch_size
from resolvers.notifier import notifier_for
from schema.context import Info
from schema.enums import MessageChannel, MessageDirection, PersonaActionKind, SurveyStatus
from schema.history import Message
from schema.ids import from_global_id
from schema.mutations import UserError, run_mutation
from schema.persona import Persona

for enum_class, description in (
    (EventKind, "What an integrated system reports."),
    (EventOutcome, "What became of one event row."),
    (engagement.LinkKind, "Which of the customer's own pages a link opens."),
    (engagement.LinkChannel, "How a link is sent."),
):
    if not hasattr(enum_class, "__strawberry_definition__"):
        strawberry.enum(enum_class, description=description)


@strawberry.input(description="One question of a survey and the customer's answer.")
class SurveyAnswerInput:
    question: str
    answer: str | None = None


@strawberry.input(description="One event; which fields it needs depends on its kind.")
class EventInput:
    external_id: str = strawberry.field(
        description="The integrated system's id for the event; unique per source. Replays are ignored."
    )
    source: str
    kind: EventKind
    persona_number: int | None = strawberry.field(
        default=None, description="Who it is about: a persona number, or a phone or email."
    )
    phone: str | None = None
    email: str | None = None
    occurred_at: dt.datetime
    direction: MessageDirection | None = strawberry.field(default=None, description="MESSAGE: required.")
    channel: MessageChannel | None = strawberry.field(default=None, description="MESSAGE: required.")
    body: str | None = strawberry.field(
        default=None, description="MESSAGE: required. An inbound STOP or START text changes TEXT consent."
    )
    campaign: str | None = strawberry.field(default=None, description="MESSAGE and ACTION: optional.")
    survey_name: str | None = strawberry.field(default=None, description="SURVEY: required.")
    survey_status: SurveyStatus | None = strawberry.field(default=None, description="SURVEY: required.")
    answers: list[SurveyAnswerInput] | None = strawberry.field(default=None, description="SURVEY: optional.")
    action_kind: PersonaActionKind | None = strawberry.field(default=None, description="ACTION: required.")
    detail: str | None = strawberry.field(default=None, description="ACTION: optional.")
    site: str | None = strawberry.field(default=None, description="PIXEL: required.")
    event: str | None = strawberry.field(default=None, description="PIXEL: required.")
    url: str | None = strawberry.field(default=None, description="PIXEL: optional.")

    def to_data(self) -> EventData:
        return EventData(
            external_id=self.external_id,
            source=self.source,
            kind=self.kind,
            occurred_at=self.occurred_at,
            persona_number=self.persona_number,
            phone=self.phone,
            email=self.email,
            direction=self.direction,
            channel=self.channel,
            body=self.body,
            campaign=self.campaign,
            survey_name=self.survey_name,
            survey_status=self.survey_status,
            answers=None if self.answers is None else [(a.question, a.answer) for a in self.answers],
            action_kind=self.action_kind,
            detail=self.detail,
            site=self.site,
            event=self.event,
            url=self.url,
        )


@strawberry.input(description="At most 1,000 events per call.")
class RecordEventsInput:
    events: list[EventInput]


@strawberry.type(description="What became of one event row, by its index in the input.")
class RecordEventResult:
    index: int
    outcome: EventOutcome
    persona: Persona | None
    user_errors: list[UserError]


@strawberry.type(description="One result per event row, in input order.")
class RecordEventsPayload:
    results: list[RecordEventResult]
    user_errors: list[UserError]


@strawberry.input(description="Which link to send the persona, and how.")
class SendLinkInput:
    persona_id: strawberry.ID
    link: engagement.LinkKind
    channel: engagement.LinkChannel


@strawberry.type(description="The persona and the OUTBOUND message now in its history.")
class SendLinkPayload:
    persona: Persona | None
    message: Message | None
    user_errors: list[UserError]


@strawberry.type
class EventsMutation:
    @strawberry.mutation(description="Messages, survey submissions, actions and pixel events from integrated systems.")
    async def record_events(self, info: Info, input: RecordEventsInput) -> RecordEventsPayload:
        org_id = info.context.viewer.org_id
        rows = [e.to_data() for e in input.events]

        async def work(session: AsyncSession) -> list[events.EventResult]:
            check_batch_size(len(rows), ["input", "events"])
            org = await session.get(OrganizationRow, org_id)
            assert org is not None, "the viewer's organization exists"
            return await events.record_events(session, org, rows, path=["input", "events"])

        outcome = await run_mutation(info, "recordEvents", work)
        if outcome.value is None:
            return RecordEventsPayload(results=[], user_errors=outcome.user_errors)
        return RecordEventsPayload(
            results=[
                RecordEventResult(
                    index=i,
                    outcome=r.outcome,
                    persona=Persona.from_row(r.persona) if r.persona is not None else None,
                    user_errors=UserError.all_of(r.errors),
                )
                for i, r in enumerate(outcome.value)
            ],
            user_errors=[],
        )

    @strawberry.mutation(description="Send the persona their wallet or refer-a-friend link by text or email.")
    async def send_link(self, info: Info, input: SendLinkInput) -> SendLinkPayload:
        ctx = info.context
        notifier = notifier_for(ctx.request.app)

        async def work(session: AsyncSession) -> engagement.SentLink:
            persona_id = from_global_id(input.persona_id, "Persona")
            return await engagement.send_link(
                session,
                ctx.settings,
                notifier,
                org_id=ctx.viewer.org_id,
                persona_id=persona_id,
                link=input.link,
                channel=input.channel,
            )

        outcome = await run_mutation(info, "sendLink", work, targets=[input.persona_id])
        if outcome.value is None:
            return SendLinkPayload(persona=None, message=None, user_errors=outcome.user_errors)
        return SendLinkPayload(
            persona=Persona.from_row(outcome.value.persona),
            message=Message.from_row(outcome.value.message),
            user_errors=[],
        )
