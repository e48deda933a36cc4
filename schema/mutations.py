"""What every mutation shares: the UserError shape, the permission check,
the one transaction, the audit entry and the turning of domain errors into
userErrors.

    outcome = await run_mutation(info, "adjustPoints", work, targets=[input.persona_id])

`work(session)` adds and flushes; run_mutation owns begin/commit/rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from permissions.matrix import MUTATION_PERMISSIONS
from permissions.viewer import PermissionDenied
from resolvers import errors
from resolvers.audit import audit_entry, target_text
from schema.context import Info

logger = logging.getLogger("personagraph.mutations")

T = TypeVar("T")


@strawberry.enum(description="Why a mutation refused (part of) its input.")
class UserErrorCode(StrEnum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    DISCOUNT_NOT_ACTIVE = "DISCOUNT_NOT_ACTIVE"
    NEGATIVE_BALANCE = "NEGATIVE_BALANCE"
    SAME_PERSONA = "SAME_PERSONA"
    ALREADY_MERGED = "ALREADY_MERGED"
    ARCHIVED = "ARCHIVED"
    CONSENT_REQUIRES_DEVICE = "CONSENT_REQUIRES_DEVICE"
    NO_CONTACT_INFO = "NO_CONTACT_INFO"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_EMAIL = "INVALID_EMAIL"
    DUPLICATE = "DUPLICATE"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    CANNOT_UNDO = "CANNOT_UNDO"
    BAD_QUERY = "BAD_QUERY"
    TOO_MANY = "TOO_MANY"
    OPTED_OUT = "OPTED_OUT"


@strawberry.type(description="A business-rule failure, with the input path at fault.")
class UserError:
    field: list[str] | None = strawberry.field(
        description="Path to the input field at fault, e.g. ['input', 'contacts', '3', 'phone']."
    )
    message: str
    code: UserErrorCode

    @classmethod
    def of(cls, error: errors.UserError) -> UserError:
        return cls(field=error.field, message=error.message, code=UserErrorCode(error.code))

    @classmethod
    def all_of(cls, found: Sequence[errors.UserError]) -> list[UserError]:
        return [cls.of(e) for e in found]


def _as_user_errors(exc: Exception) -> list[errors.UserError]:
    if isinstance(exc, errors.UserErrors):
        return exc.errors
    if isinstance(exc, errors.UserError):
        return [exc]
    if isinstance(exc, PermissionDenied):
        return [errors.UserError("FORBIDDEN", str(exc), None)]
    if isinstance(exc, errors.NotFound):
        return [errors.UserError("NOT_FOUND", exc.message, ["input"])]
    if isinstance(exc, errors.BadQuery):
        return [errors.UserError("BAD_QUERY", exc.message, ["input"])]
    assert isinstance(exc, errors.ApiError)
    return [errors.UserError("INVALID", exc.message, ["input"])]


EXPECTED = (errors.UserError, errors.UserErrors, errors.ApiError, PermissionDenied)


@dataclass
class MutationOutcome(Generic[T]):
    value: T | None = None
    user_errors: list[UserError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.user_errors


async def run_mutation(
    info: Info,
    name: str,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    targets: Sequence[str] = (),
) -> MutationOutcome[T]:
    """Check the permission, run `work` in one transaction, audit it, map failures."""
    ctx = info.context
    viewer = ctx.viewer
    try:
        viewer.require(MUTATION_PERMISSIONS[name])
        async with ctx.db.session() as session, session.begin():
            # Written first: what follows the work is the commit alone, so the rows the work locks
            # are held no longer than its statements and the commit (a failure rolls it back).
            entry = audit_entry(viewer, name, targets, "OK")
            session.add(entry)
            await session.flush()
            value = await work(session)
            entry.target_ids = target_text(targets)  # with those the work found
    except EXPECTED as exc:
        found = _as_user_errors(exc)
        outcome = "FORBIDDEN" if isinstance(exc, PermissionDenied) else "REFUSED"
        async with ctx.db.session() as session, session.begin():
            session.add(audit_entry(viewer, name, targets, outcome, " ".join(sorted({e.code for e in found}))))
        return MutationOutcome(user_errors=UserError.all_of(found))
    # What this request's loaders cached before the write is stale now.
    ctx.loaders.clear()
    return MutationOutcome(value=value)
