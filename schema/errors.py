"""One error vocabulary in errors[].extensions.code, and masking of the rest.

Expected failures (domain errors, permission denials, bad documents) keep
their message and get a code; anything else becomes "Unexpected error" with
an error id that the server log carries too, so no SQL, path or PII leaks.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from collections.abc import Iterator

from graphql import GraphQLError
from graphql.error import GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from permissions.viewer import PermissionDenied
from resolvers.errors import ApiError

logger = logging.getLogger("personagraph.errors")

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
BAD_QUERY = "BAD_QUERY"
THROTTLED = "THROTTLED"
MAX_COST_EXCEEDED = "MAX_COST_EXCEEDED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"

# graphql-core's wording for values that do not fit their input type.
_INPUT_MESSAGES = (
    "got invalid value",
    "has invalid value",
    "was not provided",
    "must not be null",
    "Expected value of type",
    "cannot represent",
    "does not exist in",
)


def _code_for(error: GraphQLError, resolving: bool = False) -> str | None:
    resolving = resolving or error.path is not None
    original = error.original_error
    if isinstance(original, PermissionDenied):
        return FORBIDDEN
    if isinstance(original, ApiError):
        return original.code
    if original is None:
        if error.extensions and "code" in error.extensions:
            return str(error.extensions["code"])
        if resolving:
            # Raised while completing a field (a value the type cannot represent, a null
            # in a non-null field): the server's fault, and the message may quote the value.
            return None
        if isinstance(error, GraphQLSyntaxError):
            return BAD_QUERY
        if any(m in error.message for m in _INPUT_MESSAGES):
            return BAD_USER_INPUT
        return BAD_QUERY
    if isinstance(original, GraphQLError):
        return _code_for(original, resolving)
    return None


def with_code(error: GraphQLError) -> GraphQLError:
    code = _code_for(error)
    if code is not None:
        return GraphQLError(
            message=error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={**(error.extensions or {}), "code": code},
        )
    error_id = uuid.uuid4().hex[:12]
    original = error.original_error
    # The type and the frames, never the message: a driver's message can
    # carry SQL parameters, and so PII.
    frames = "".join(traceback.format_tb(original.__traceback__)) if original is not None else ""
    kind = type(original).__name__ if original is not None else "field completion error"
    logger.error("unexpected error %s at %s: %s\n%s", error_id, error.path, kind, frames)
    return GraphQLError(
        message="Unexpected error.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": INTERNAL_SERVER_ERROR, "errorId": error_id},
    )


class ErrorVocabulary(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [with_code(e) for e in result.errors]


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(error: GraphQLError) -> GraphQLError:
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=error.extensions,
    )


class HideSuggestions(SchemaExtension):
    """In production, no "Did you mean ...?" in messages: the schema cannot be mapped by guessing.
    Listed before ErrorVocabulary, so it sees (and copies) the coded errors, never cached ones."""

    def on_operation(self) -> Iterator[None]:
        yield
        settings = getattr(self.execution_context.context, "settings", None)
        result = self.execution_context.result
        if settings is not None and settings.is_production and result is not None and result.errors:
            result.errors = [without_suggestions(e) for e in result.errors]
