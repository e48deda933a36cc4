"""A compiled executor for read queries: the same resolvers, without graphql-core's
field-by-field machinery.

graphql-core executes every field through the same general path: a ResolveInfo
and a strawberry Info built per field, the field's extension chain, an
awaitable check, a completion dispatched on the return type, a response path.
The full persona card selects ~650 fields; that path cost more CPU than the
card's SQL (bench/README.md, "What the profile shows").

Here a query is compiled once per (document, operation, permission set) into
a tree of plans (schema/fast_plan.py). Running a plan reads plain
attributes with `getattr`, calls resolvers with the arguments strawberry's
own `get_arguments` converts (a resolver without arguments is called directly,
with one Info per field and request, made only if it asks for one), and awaits
sibling resolvers together, so DataLoaders batch exactly as under graphql-core.

Interfaces and unions are compiled for each type they may hold; the value's
strawberry type picks the plan at run time. Anything the compiled form does not
cover falls back to graphql-core, whole: mutations, introspection, directives on the query,
fields with extensions other than the permission check, a field the viewer may
not see (graphql-core answers it with null and a FORBIDDEN error), and any
exception while running (a NotFound, a bad argument, a null in a non-null
field). Queries do not write, so running one again under graphql-core is safe
and answers with graphql-core's exact errors. tests/test_execution_parity_*.py
hold both paths to byte-identical answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Generator
from types import CoroutineType
from typing import Any, TypeVar

from graphql import ExecutionResult, GraphQLResolveInfo, GraphQLSchema
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import get_arguments
from strawberry.types.execution import ExecutionContext
from strawberry.types.info import Info

from schema.fast_plan import PLANS, VETTED, Complete, Fallback, FieldPlan, Plan, PlanCache, awaitable, compile_plan

logger = logging.getLogger("personagraph.execution")


def _start(value: Any) -> Any:
    """A resolver's value, run up to its first real wait: a coroutine that finishes
    without waiting (its loads were cached) gives its value now, without a task and a
    turn of the event loop; one that waits comes back as an awaitable that continues it."""
    if type(value) is not CoroutineType:
        return value
    try:
        waiting_for = value.send(None)
    except StopIteration as done:
        return done.value
    if getattr(waiting_for, "_asyncio_future_blocking", False):
        # What a task does with a future its coroutine waits on: take the flag (another
        # coroutine started here may wait on the same future before any task runs them).
        waiting_for._asyncio_future_blocking = False
    return _Started(value, waiting_for)


class _Started:
    """The rest of a coroutine that `_start` ran up to its first wait."""

    __slots__ = ("coroutine", "waiting_for")

    def __init__(self, coroutine: CoroutineType[Any, Any, Any], waiting_for: Any) -> None:
        self.coroutine = coroutine
        self.waiting_for = waiting_for

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, waiting_for = self.coroutine, self.waiting_for
        if hasattr(waiting_for, "_asyncio_future_blocking"):
            waiting_for._asyncio_future_blocking = True  # handed, as the coroutine yielded it, to the task
        while True:
            try:
                sent = yield waiting_for
            except BaseException as exc:  # thrown in by the task (a cancellation): passed on
                try:
                    waiting_for = coroutine.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    waiting_for = coroutine.send(sent)
                except StopIteration as done:
                    return done.value


class Run:
    """One request's execution of a plan."""

    __slots__ = ("context", "infos", "orphans", "plan", "schema", "strawberry", "variables")

    def __init__(self, plan: Plan, schema: Any, context: Any, variables: VariableValues) -> None:
        self.plan = plan
        self.strawberry = schema
        self.schema: GraphQLSchema = schema._schema
        self.context = context
        self.variables = variables
        # What siblings of a failed field started: finished before graphql-core takes over, so
        # no read is cut off halfway on the request's connection (nor a coroutine left unawaited).
        self.orphans: list[Any] = []
        # One Info per field of the plan: the same for each of its sources (resolvers read the
        # context, the selection and the variables from it, never the path).
        self.infos: dict[int, Info[Any, Any]] = {}

    def orphaned(self, values: Any) -> None:
        self.orphans.extend(v for v in values if awaitable(v))

    def object(self, fields: list[FieldPlan], source: Any) -> Any:
        out: dict[str, Any] = {}
        waits: list[tuple[Any, Any]] = []
        try:
            for f in fields:
                if f.typename is not None:
                    out[f.key] = f.typename
                    continue
                if f.attribute is not None:
                    value = f.complete(getattr(source, f.attribute), self)
                    if f.plain_leaf:
                        out[f.key] = value
                        continue
                else:
                    value = _start(self.call(f, source) if f.direct is not None else self.resolve(f, source))
                    value = self.later(value, f.complete) if awaitable(value) else f.complete(value, self)
                out[f.key] = self.place(value, out, f.key, waits)
        except BaseException:
            self.orphaned(c[k] for c, k in waits)
            raise
        return self.settle(out, waits) if waits else out

    @staticmethod
    def place(value: Any, container: Any, key: Any, waits: list[tuple[Any, Any]]) -> Any:
        """What goes in container[key] now: a value, an awaitable (noted in `waits`), or the
        object of a _Settle, whose waits become the container's own (filled in place when
        they are awaited together): one gather for a whole tree, not one task per object."""
        if type(value) is _Settle:
            waits.extend(value.waits)
            return value.out
        if awaitable(value):
            waits.append((container, key))
        return value

    def resolve(self, f: FieldPlan, source: Any) -> Any:
        field = f.field
        assert field is not None
        assert field.base_resolver is not None
        assert f.definition is not None
        arguments = get_argument_values(f.definition, f.nodes[0], self.variables) if f.takes_arguments else {}
        config = self.strawberry.config
        args, kwargs = get_arguments(
            field=field,
            source=source,
            info=self.info(f),
            kwargs=arguments,
            config=config,
            scalar_registry=self.strawberry.schema_converter.scalar_registry,
        )
        return field.base_resolver(*args, **kwargs)

    def call(self, f: FieldPlan, source: Any) -> Any:
        """A resolver called as get_arguments would call it (FieldPlan.direct)."""
        direct, resolver = f.direct, f.field.base_resolver  # type: ignore[union-attr]
        assert direct is not None
        assert resolver is not None
        kwargs = dict.fromkeys(direct.source_names, source)
        if direct.info_name is not None:
            kwargs[direct.info_name] = self.info(f)
        if direct.arguments:
            assert f.definition is not None
            given = get_argument_values(f.definition, f.nodes[0], self.variables)
            kwargs.update((python_name, given[name]) for name, python_name in direct.arguments if name in given)
        return resolver(source, **kwargs) if direct.takes_self else resolver(**kwargs)

    def info(self, f: FieldPlan) -> Info[Any, Any]:
        """The field's Info, made once per request (the same for each of its sources)."""
        info = self.infos.get(id(f))
        if info is None:
            info = self.infos[id(f)] = Info(_raw_info=self.raw_info(f), _field=f.field)  # type: ignore[arg-type]
        return info

    def raw_info(self, f: FieldPlan) -> GraphQLResolveInfo[Any]:
        assert f.definition is not None
        assert f.parent is not None
        return GraphQLResolveInfo(
            f.nodes[0].name.value,
            f.nodes,
            f.definition.type,
            f.parent,
            Path(None, f.key, f.parent.name),  # resolvers here never read the path; errors fall back
            self.schema,
            self.plan.fragments,
            None,
            self.plan.operation,
            self.variables,
            self.context,
            awaitable,  # type: ignore[arg-type]
            None,
            None,  # type: ignore[arg-type]
        )

    def later(self, value: Awaitable[Any], complete: Complete) -> _Later:
        return _Later(self, value, complete)

    def settle(self, out: Any, waits: list[tuple[Any, Any]]) -> _Settle:
        return _Settle(out, waits)


class _Later:
    """A resolver's awaitable value, then its completion (which may wait too)."""

    __slots__ = ("complete", "run", "value")

    def __init__(self, run: Run, value: Awaitable[Any], complete: Complete) -> None:
        self.run, self.value, self.complete = run, value, complete

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._finish().__await__()

    async def _finish(self) -> Any:
        completed = self.complete(await self.value, self.run)
        return await completed if awaitable(completed) else completed


class _Settle:
    """An object or a list whose values (at any depth below it) wait: each (container, key)
    in `waits` holds an awaitable; they are awaited together and put in place."""

    __slots__ = ("out", "waits")

    def __init__(self, out: Any, waits: list[tuple[Any, Any]]) -> None:
        self.out, self.waits = out, waits

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._settle().__await__()

    async def _settle(self) -> Any:
        waits = self.waits
        # Every sibling runs to its end even when one fails: none is cut off mid-read.
        values = await asyncio.gather(*(c[k] for c, k in waits), return_exceptions=True)
        for (c, k), v in zip(waits, values, strict=True):
            if isinstance(v, BaseException):
                raise v
            c[k] = v
        return self.out


async def execute_plan(plan: Plan, strawberry_schema: Any, context: Any, raw_variables: dict[str, Any] | None) -> Any:
    """The operation's data; raises Fallback where graphql-core should answer instead."""
    variables = get_variable_values(
        strawberry_schema._schema, plan.operation.variable_definitions or (), raw_variables or {}
    )
    if not isinstance(variables, VariableValues):
        raise Fallback("variables that do not coerce")
    run = Run(plan, strawberry_schema, context, variables)
    try:
        data = run.object(plan.fields, None)
        return await data if awaitable(data) else data
    except Exception:
        if run.orphans:
            await asyncio.gather(*run.orphans, return_exceptions=True)
        raise


def fell_back(app_context: Any, exc: Exception) -> None:
    """After a compiled run raised: graphql-core answers the request instead."""
    logger.debug("compiled query fell back to graphql-core: %s", type(exc).__name__)
    app_context.compiled = False
    # Loads the plan left half-done (cancelled with their siblings) must not be shared.
    app_context.loaders.clear()


P = TypeVar("P")


def plan_for(context: ExecutionContext, plans: PlanCache[P]) -> P | None:
    """The compiled plan for this request from `plans`, or None: when FAST_EXECUTION is off,
    when something already answered (a refusal by the limits or the cost), or when the
    document has no plan for the viewer's permissions."""
    app_context = context.context
    viewer = getattr(app_context, "viewer", None)
    document = context.graphql_document
    if (
        context.result is not None
        or context.pre_execution_errors
        or document is None
        or context.query is None
        or viewer is None
        or not getattr(getattr(app_context, "settings", None), "fast_execution", False)
        or getattr(app_context, "plan_failed", False)  # schema/vetted.py ran it: it raised
    ):
        return None
    return plans.get(
        context.schema._schema, context.query, document, context.operation_name, frozenset(viewer.permissions)
    )


class FastExecution(SchemaExtension):
    """Answers a query with its compiled plan when there is one (after the cost was charged)."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        plan = plan_for(context, PLANS)
        if plan is not None:
            app_context = context.context
            app_context.compiled = True
            try:
                data = await execute_plan(plan, context.schema, app_context, context.variables)
            except Exception as exc:  # Fallback, a domain error, a bad argument: graphql-core answers
                fell_back(app_context, exc)
            else:
                context.result = ExecutionResult(data=data, errors=None)
                assert context.query is not None
                assert context.graphql_document is not None
                VETTED.add(context.schema._schema, context.query, context.operation_name, context.graphql_document)
        yield


__all__ = ["Fallback", "FastExecution", "PlanCache", "compile_plan", "execute_plan"]
