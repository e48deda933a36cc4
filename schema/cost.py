"""The cost of each operation charged to a leaky bucket per API key.

An operation whose price (schema/pricing.py) is over MAX_QUERY_COST is refused
with MAX_COST_EXCEEDED and the figures. Otherwise its cost is taken from the
key's bucket, which refills at `cost_restore_rate` points a second up to
`cost_bucket_size`; when the bucket cannot cover it the answer is THROTTLED
(HTTP 429 with Retry-After). After execution the actual cost (the same rules,
counting the nodes a connection really returned) is known and the difference
goes back into the bucket. Every response carries `extensions.cost`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension

from schema.errors import MAX_COST_EXCEEDED, THROTTLED
from schema.pricing import MAX_QUERY_COST, query_cost


@dataclass
class Bucket:
    """A leaky bucket: `available` points, refilled at `rate` a second up to `size`."""

    size: int
    rate: int
    available: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.available = float(self.size)

    def refill(self) -> None:
        now = time.monotonic()
        self.available = min(float(self.size), self.available + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, points: int) -> float | None:
        """Take `points`, or return the seconds to wait until they are there."""
        self.refill()
        if points <= self.available:
            self.available -= points
            return None
        return (points - self.available) / self.rate if self.rate > 0 else math.inf

    def give_back(self, points: int) -> None:
        self.refill()
        self.available = min(float(self.size), self.available + max(points, 0))

    def status(self) -> dict[str, int]:
        self.refill()
        return {
            "maximumAvailable": self.size,
            "currentlyAvailable": int(self.available),
            "restoreRate": self.rate,
        }


class CostBuckets:
    """Every API key's bucket, in this process's memory."""

    def __init__(self, size: int, rate: int) -> None:
        self.size = size
        self.rate = rate
        self._buckets: dict[uuid.UUID | str, Bucket] = {}

    def for_key(self, key: uuid.UUID | str) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(self.size, self.rate)
        return bucket


def bucket_for(app_state: Any, viewer: Any) -> Bucket | None:
    """The bucket of the viewer's key, from the app's CostBuckets (None outside the app)."""
    buckets = getattr(app_state, "cost_buckets", None)
    if not isinstance(buckets, CostBuckets) or viewer is None:
        return None
    return buckets.for_key(viewer.api_key_id or f"org:{viewer.org_id}")


def bucket_of(context: Any) -> Bucket | None:
    """The bucket for a request's context (None for a bare schema.execute, as in some tests)."""
    request = getattr(context, "request", None)
    app = getattr(request, "app", None)
    return bucket_for(getattr(app, "state", None), getattr(context, "viewer", None))


def cost_extension(requested: int, actual: int, bucket: Bucket | None) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": bucket.status() if bucket is not None else None,
    }


class QueryCost(SchemaExtension):
    def __init__(self) -> None:
        self.requested = 0
        self.actual = 0
        self.charged = 0

    def _refuse(self, message: str, extensions: dict[str, Any]) -> None:
        error = GraphQLError(message, extensions=extensions)
        self.execution_context.result = ExecutionResult(data=None, errors=[error])

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        schema = context.schema._schema
        self.requested = query_cost(schema, document, context.operation_name, context.variables)
        bucket = bucket_of(context.context)
        if self.requested > MAX_QUERY_COST:
            self._refuse(
                f"The operation costs {self.requested}; at most {MAX_QUERY_COST} is allowed. "
                "Ask for smaller pages (first/last) or fewer connections.",
                {"code": MAX_COST_EXCEEDED, "cost": {"requestedQueryCost": self.requested, "maximum": MAX_QUERY_COST}},
            )
            yield
            return
        if bucket is not None:
            wait = bucket.take(self.requested)
            if wait is not None:
                retry_after = max(1, math.ceil(wait))
                self._refuse(
                    f"The operation costs {self.requested} but only {int(bucket.available)} points are available "
                    f"now; they come back at {bucket.rate} a second. Retry in {retry_after} s.",
                    {"code": THROTTLED, "retryAfter": retry_after},
                )
                yield
                return
            self.charged = self.requested
        yield
        result = context.result
        data = getattr(result, "data", None)
        errors = getattr(result, "errors", None) or []
        if data is None and errors and all(e.path is None for e in errors):
            self.actual = 0  # refused before any field ran (variables that do not coerce)
        else:
            self.actual = query_cost(schema, document, context.operation_name, context.variables, data)
        if bucket is not None:
            bucket.give_back(self.charged - self.actual)

    def get_results(self) -> dict[str, Any]:
        return {"cost": cost_extension(self.requested, self.actual, bucket_of(self.execution_context.context))}
