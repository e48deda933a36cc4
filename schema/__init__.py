"""The GraphQL schema, assembled from the card areas."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from schema import enums as _enums  # noqa: F401  (registers the enums before any type names them)
from schema.errors import ErrorVocabulary
from schema.persona_root import PersonaQuery

Query = merge_types("Query", (PersonaQuery,))


class PersonaGraphSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # ErrorVocabulary has already logged what needs logging, without PII.
        return None


def build_schema(**kwargs: Any) -> strawberry.Schema:
    return PersonaGraphSchema(
        query=Query,
        extensions=[ErrorVocabulary, ParserCache, ValidationCache],
        **kwargs,
    )


schema = build_schema()

__all__ = ["Query", "build_schema", "schema"]
