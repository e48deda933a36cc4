"""Privacy requests: requestPrivacyAction and the privacyRequests list."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from models import Organization
from permissions.fields import guarded
from permissions.matrix import Permission
from resolvers import privacy
from resolvers.pagination import PageRequest
from schema.context import Info
from schema.enums import PrivacyAction, PrivacyRequestStatus
from schema.ids import to_global_id
from schema.mutations import UserError, run_mutation
from schema.relay import Connection, Node


@strawberry.type(description="A request to opt a customer out or to erase their data; it keeps no contact details.")
class PrivacyRequest(Node):
    action: PrivacyAction
    status: PrivacyRequestStatus
    requested_at: dt.datetime
    completed_at: dt.datetime | None
    personas_affected: int = strawberry.field(description="How many personas it touched.")

    @classmethod
    def from_row(cls, row: Any) -> PrivacyRequest:
        return cls(
            id=strawberry.ID(to_global_id("PrivacyRequest", row.id)),
            action=PrivacyAction(row.action),
            status=PrivacyRequestStatus(row.status),
            requested_at=row.requested_at,
            completed_at=row.completed_at,
            personas_affected=row.personas_affected,
        )


PrivacyRequestConnection = Connection[PrivacyRequest]


@strawberry.input(description="Who (a phone and/or an email, in any common format) and what to do.")
class PrivacyActionInput:
    phone: str | None = None
    email: str | None = None
    action: PrivacyAction


@strawberry.type(description="The request as recorded, or why it was refused.")
class PrivacyRequestPayload:
    request: PrivacyRequest | None
    user_errors: list[UserError]


@strawberry.type
class PrivacyQuery:
    @guarded(Permission.PRIVACY_REQUESTS, description="Privacy requests of the organization, newest first.")
    async def privacy_requests(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> PrivacyRequestConnection | None:
        request = PageRequest.from_args(first, after, last, before)
        db, org_id = info.context.db, info.context.viewer.org_id
        async with db.read() as conn:
            page = await privacy.privacy_requests_page(conn, org_id, request)

        async def count() -> int:
            async with db.read() as conn:
                return await privacy.privacy_requests_count(conn, org_id)

        return PrivacyRequestConnection.of(page, PrivacyRequest.from_row, count)


@strawberry.type
class PrivacyMutation:
    @strawberry.mutation(
        description=(
            "Opt out (every channel, and imports can no longer opt the contact back in) or erase the data of "
            "every persona holding the phone or email. Staff requests run at once and come back COMPLETED."
        )
    )
    async def request_privacy_action(self, info: Info, input: PrivacyActionInput) -> PrivacyRequestPayload:
        viewer = info.context.viewer
        # Filled by the work, read by run_mutation's audit entry after it: the request and the personas touched.
        targets: list[str] = []

        async def work(session: AsyncSession) -> privacy.Outcome:
            org = await session.get(Organization, viewer.org_id)
            assert org is not None  # the key's organization exists while the key does
            keys = privacy.normalize_contact(input.phone, input.email, org.default_region, ["input"])
            outcome = await privacy.request_privacy_action(session, org, keys, input.action, requested_by=viewer.name)
            targets.append(to_global_id("PrivacyRequest", outcome.request.id))
            targets.extend(to_global_id("Persona", pid) for pid in outcome.persona_ids)
            return outcome

        result = await run_mutation(info, "requestPrivacyAction", work, targets=targets)
        if result.value is None:
            return PrivacyRequestPayload(request=None, user_errors=result.user_errors)
        return PrivacyRequestPayload(request=PrivacyRequest.from_row(result.value.request), user_errors=[])
