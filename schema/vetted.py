"""A query text that went the whole way once, answered again without strawberry's pipeline.

strawberry takes each request through its extensions' hooks: thirteen extensions made anew per
request (the limits, the parser and validation caches, the error vocabulary, the cost, the
compiled executors), each lifecycle (operation, parsing, validation, execution) a stack of
context managers around them. What parsing, the token and shape limits and validation decide
depends on the query text alone; so once a text has passed them all and its compiled plan has
answered it (FastExecution notes it in fast_plan.VETTED), a request with the same text and operation goes
straight to what depends on the request: the plan for the viewer's permissions, the cost
(charged before the run, settled after it, as QueryCost does) and the plan's run. Measured in
instructions per card (callgrind): 24.3M -> ~23.3M.

Anything else goes the whole way, which answers it in its own words: a text not yet answered
so, no plan for the viewer's permissions, a cost over the maximum or over what the key's bucket
holds, an exception while running (then the whole way does not try the compiled plan again:
`Context.plan_failed`).
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema.base import BaseSchema

from schema.context import Context
from schema.cost import bucket_of, cost_extension
from schema.fast_exec import execute_plan, fell_back
from schema.fast_plan import PLANS, VETTED
from schema.pricing import MAX_QUERY_COST, query_cost


async def answer_vetted(
    schema: BaseSchema,
    query: str | None,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    context: Context,
) -> dict[str, Any] | None:
    """The response body (data and the cost) for a vetted text, or None: the whole way answers."""
    assert isinstance(schema, strawberry.Schema)
    graphql_schema = schema._schema
    document = VETTED.get(graphql_schema, query, operation_name) if query is not None else None
    if query is None or document is None or not context.settings.fast_execution:
        return None
    plan = PLANS.get(graphql_schema, query, document, operation_name, frozenset(context.viewer.permissions))
    if plan is None:
        return None
    requested = query_cost(graphql_schema, document, operation_name, variables)
    bucket = bucket_of(context)
    if requested > MAX_QUERY_COST or (bucket is not None and bucket.take(requested) is not None):
        return None  # refused the whole way, with the figures it gives
    context.compiled = True
    try:
        data = await execute_plan(plan, schema, context, variables)
    except Exception as exc:  # Fallback, a domain error, a bad argument: graphql-core answers
        fell_back(context, exc)
        context.plan_failed = True
        if bucket is not None:
            bucket.give_back(requested)
        return None
    actual = query_cost(graphql_schema, document, operation_name, variables, data)
    if bucket is not None:
        bucket.give_back(requested - actual)
    return {"data": data, "extensions": {"cost": cost_extension(requested, actual, bucket)}}


__all__ = ["answer_vetted"]
