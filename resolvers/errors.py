"""Domain errors. Resolvers raise these; schema/ turns them into GraphQL
errors (with extensions.code) or into a mutation's userErrors."""

from __future__ import annotations

from collections.abc import Sequence


class ApiError(Exception):
    """An expected failure shown to the caller with a code, never masked."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ApiError):
    code = "NOT_FOUND"


class BadUserInput(ApiError):
    code = "BAD_USER_INPUT"


class BadQuery(ApiError):
    code = "BAD_QUERY"


class UserError(Exception):
    """A business-rule failure of a mutation: becomes one entry of userErrors."""

    def __init__(self, code: str, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field is not None else None


class UserErrors(Exception):
    """Several business-rule failures at once (e.g. every bad field of a row)."""

    def __init__(self, errors: Sequence[UserError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)
