"""The GraphQL schema, assembled from the card areas."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from schema import enums as _enums  # noqa: F401  (registers the enums before any type names them)
from schema.audiences import AudienceMutation, AudienceQuery
from schema.cost import QueryCost
from schema.discounts import DiscountQuery
from schema.errors import ErrorVocabulary, HideSuggestions
from schema.events import EventsMutation
from schema.fast_exec import FastExecution
from schema.fast_mutations import FastMutations
from schema.ingest import IngestMutation
from schema.limits import LIMITS, CachedParser, CachedValidation
from schema.merges import MergeMutation, MergeQuery
from schema.nodes import NodeQuery
from schema.persona_root import PersonaQuery
from schema.points_mutations import PointsMutation
from schema.privacy import PrivacyMutation, PrivacyQuery
from schema.profile_mutations import ProfileMutation
from schema.scalars import DATETIME
from schema.search import SearchQuery

# Each card area contributes its root fields here (one line per area).
QUERIES: tuple[type, ...] = (
    PersonaQuery,
    NodeQuery,
    DiscountQuery,
    PrivacyQuery,
    MergeQuery,
    SearchQuery,
    AudienceQuery,
)
MUTATIONS: tuple[type, ...] = (
    IngestMutation,
    EventsMutation,
    PrivacyMutation,
    PointsMutation,
    MergeMutation,
    ProfileMutation,
    AudienceMutation,
)

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS) if MUTATIONS else None


class PersonaGraphSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # ErrorVocabulary has already logged what needs logging, without PII.
        return None


def build_schema(**kwargs: Any) -> strawberry.Schema:
    return PersonaGraphSchema(
        query=Query,
        mutation=Mutation,
        scalar_overrides={dt.datetime: DATETIME},
        # Classes, not instances: strawberry builds fresh ones per request.
        extensions=[
            HideSuggestions,
            ErrorVocabulary,
            CachedParser,
            *LIMITS,
            CachedValidation,
            QueryCost,
            # Last: they run inside the others' execution hooks, after the cost was charged.
            FastMutations,
            FastExecution,
        ],
        **kwargs,
    )


schema = build_schema()

__all__ = ["Mutation", "Query", "build_schema", "schema"]
