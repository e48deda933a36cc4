"""A compiled executor for read queries: the same resolvers, without graphql-core's
field-by-field machinery.

graphql-core executes every field through the same general path: a ResolveInfo
and a strawberry Info built per field, the field's extension chain, an
awaitable check, a completion dispatched on the return type, a response path.
The full persona card selects ~650 fields; that path cost more CPU than the
card's SQL (bench/README.md, "What the profile shows").

Here a query is compiled once per (document, operation, permission set) into
a tree of plans: for each selected field its response key, the strawberry
field, whether it is a plain attribute (most are) or has a resolver, and a
completion function made for its return type. Running a plan reads plain
attributes with `getattr`, calls resolvers with the arguments strawberry's
own `get_arguments` converts (an Info is made only for resolvers that ask for
one), and awaits sibling resolvers together, so DataLoaders batch exactly as
under graphql-core.

Interfaces and unions are compiled for each type they may hold; the value's
strawberry type picks the plan at run time. Anything the compiled form does not
cover falls back to graphql-core, whole: mutations, introspection, directives on the query,
fields with extensions other than the permission check, a field the viewer may
not see (graphql-core answers it with null and a FORBIDDEN error), and any
exception while running (a NotFound, a bad argument, a null in a non-null
field). Queries do not write, so running one again under graphql-core is safe
and answers with graphql-core's exact errors. tests/test_execution_parity.py
holds both paths to byte-identical answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from types import CoroutineType
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    is_abstract_type,
    is_leaf_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter, get_arguments
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

from permissions.fields import PermissionCheck

PLANS_KEPT = 256
logger = logging.getLogger("personagraph.execution")


class Fallback(Exception):
    """This request is answered by graphql-core instead."""


Complete = Callable[[Any, "Run"], Any]


@dataclass(slots=True)
class FieldPlan:
    key: str
    typename: str | None  # set for __typename: the answer is known when compiled
    attribute: str | None  # set for a plain field: getattr(source, attribute)
    field: StrawberryField | None
    definition: GraphQLField | None
    nodes: list[FieldNode]
    parent: GraphQLObjectType | None
    complete: Complete
    takes_arguments: bool


@dataclass(slots=True)
class Plan:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    root: GraphQLObjectType
    fields: list[FieldPlan]


class Unsupported(Exception):
    """The document has something the compiled form does not cover (at compile time)."""


def _awaitable(value: Any) -> bool:
    return hasattr(value, "__await__")


class Compiler:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, permissions: frozenset[Any]) -> None:
        self.schema = schema
        self.permissions = permissions
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def collect(
        self, parent: GraphQLObjectType, selection_set: SelectionSetNode, into: dict[str, list[FieldNode]]
    ) -> dict[str, list[FieldNode]]:
        """Fields by response key, through the fragments that apply to this type (no directives anywhere)."""
        for selection in selection_set.selections:
            if selection.directives:
                raise Unsupported("directive")
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                into.setdefault(key, []).append(selection)
                continue
            if isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None or fragment.directives or fragment.variable_definitions:
                    raise Unsupported("fragment")
                if self.applies(fragment.type_condition.name.value, parent):
                    self.collect(parent, fragment.selection_set, into)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self.applies(condition.name.value, parent):
                    self.collect(parent, selection.selection_set, into)
        return into

    def applies(self, condition: str, concrete: GraphQLObjectType) -> bool:
        """Whether a fragment on `condition` (a type, an interface or a union) applies to `concrete`."""
        if condition == concrete.name:
            return True
        named = self.schema.get_type(condition)
        return is_abstract_type(named) and self.schema.is_sub_type(named, concrete)

    def fields(self, parent: GraphQLObjectType, selection_sets: list[SelectionSetNode]) -> list[FieldPlan]:
        collected: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self.collect(parent, selection_set, collected)
        return [self.field(parent, key, nodes) for key, nodes in collected.items()]

    def field(self, parent: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> FieldPlan:
        name = nodes[0].name.value
        if name == "__typename":
            return FieldPlan(key, parent.name, None, None, None, nodes, parent, _leaf_identity, False)
        definition = parent.fields.get(name)
        if definition is None or name.startswith("__"):
            raise Unsupported("introspection")
        field = (definition.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if not isinstance(field, StrawberryField):
            raise Unsupported("not a strawberry field")
        for extension in field.extensions:
            if not isinstance(extension, PermissionCheck):
                raise Unsupported("field extension")
            if extension.permission not in self.permissions:
                raise Unsupported("a field the viewer may not see")
        sub_sets = [n.selection_set for n in nodes if n.selection_set is not None]
        complete = self.completer(definition.type, sub_sets)
        # A field without a resolver is an attribute, guarded or not (the permission was checked above).
        basic = field.base_resolver is None
        return FieldPlan(
            key=key,
            typename=None,
            attribute=field.python_name if basic else None,
            field=field,
            definition=definition,
            nodes=nodes,
            parent=parent,
            complete=complete,
            takes_arguments=bool(definition.args),
        )

    def completer(self, type_: GraphQLOutputType, sub_sets: list[SelectionSetNode]) -> Complete:
        if isinstance(type_, GraphQLNonNull):
            inner = self.completer(type_.of_type, sub_sets)

            def non_null(value: Any, run: Run) -> Any:
                if value is None:
                    raise Fallback("null in a non-null field")
                return inner(value, run)

            return non_null
        if isinstance(type_, GraphQLList):
            item = self.completer(type_.of_type, sub_sets)

            def listed(value: Any, run: Run) -> Any:
                if value is None:
                    return None
                items: list[Any] = []
                try:
                    for v in value:
                        items.append(item(v, run))
                except BaseException:
                    run.orphaned(items)
                    raise
                pending = [n for n, v in enumerate(items) if _awaitable(v)]
                return run.settle(items, pending) if pending else items

            return listed
        if is_leaf_type(type_):
            serialize = type_.serialize

            def leaf(value: Any, _run: Run) -> Any:
                return None if value is None else serialize(value)

            return leaf
        if is_abstract_type(type_):
            # One plan per type the value may be; the value's strawberry type picks it.
            by_type = {
                concrete.name: self.fields(concrete, sub_sets) for concrete in self.schema.get_possible_types(type_)
            }

            def abstract(value: Any, run: Run) -> Any:
                if value is None:
                    return None
                definition = getattr(type(value), "__strawberry_definition__", None)
                fields = by_type.get(getattr(definition, "name", ""))
                if fields is None:
                    raise Fallback("a value of an unexpected type")
                return run.object(fields, value)

            return abstract
        assert isinstance(type_, GraphQLObjectType)
        fields = self.fields(type_, sub_sets)

        def obj(value: Any, run: Run) -> Any:
            return None if value is None else run.object(fields, value)

        return obj


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


def _leaf_identity(value: Any, _run: Run) -> Any:
    return value


class Run:
    """One request's execution of a plan."""

    __slots__ = ("context", "orphans", "plan", "schema", "strawberry", "variables")

    def __init__(self, plan: Plan, schema: Any, context: Any, variables: VariableValues) -> None:
        self.plan = plan
        self.strawberry = schema
        self.schema: GraphQLSchema = schema._schema
        self.context = context
        self.variables = variables
        # What siblings of a failed field started: finished before graphql-core takes over, so
        # no read is cut off halfway on the request's connection (nor a coroutine left unawaited).
        self.orphans: list[Any] = []

    def orphaned(self, values: Any) -> None:
        self.orphans.extend(v for v in values if _awaitable(v))

    def object(self, fields: list[FieldPlan], source: Any) -> Any:
        out: dict[str, Any] = {}
        pending: list[str] = []
        try:
            for f in fields:
                if f.typename is not None:
                    out[f.key] = f.typename
                    continue
                if f.attribute is not None:
                    value = f.complete(getattr(source, f.attribute), self)
                else:
                    value = _start(self.resolve(f, source))
                    value = self.later(value, f.complete) if _awaitable(value) else f.complete(value, self)
                out[f.key] = value
                if _awaitable(value):
                    pending.append(f.key)
        except BaseException:
            self.orphaned(out[k] for k in pending)
            raise
        return self.settle(out, pending) if pending else out

    def resolve(self, f: FieldPlan, source: Any) -> Any:
        field = f.field
        assert field is not None
        assert field.base_resolver is not None
        assert f.definition is not None
        arguments = get_argument_values(f.definition, f.nodes[0], self.variables) if f.takes_arguments else {}
        info = Info(_raw_info=self.raw_info(f), _field=field)
        config = self.strawberry.config
        args, kwargs = get_arguments(
            field=field,
            source=source,
            info=info,
            kwargs=arguments,
            config=config,
            scalar_registry=self.strawberry.schema_converter.scalar_registry,
        )
        return field.base_resolver(*args, **kwargs)

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
            _awaitable,  # type: ignore[arg-type]
            None,
            None,  # type: ignore[arg-type]
        )

    def later(self, value: Awaitable[Any], complete: Complete) -> _Later:
        return _Later(self, value, complete)

    def settle(self, out: Any, pending: list[Any]) -> _Settle:
        return _Settle(out, pending)


class _Later:
    """A resolver's awaitable value, then its completion (which may wait too)."""

    __slots__ = ("complete", "run", "value")

    def __init__(self, run: Run, value: Awaitable[Any], complete: Complete) -> None:
        self.run, self.value, self.complete = run, value, complete

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._finish().__await__()

    async def _finish(self) -> Any:
        completed = self.complete(await self.value, self.run)
        return await completed if _awaitable(completed) else completed


class _Settle:
    """An object's (or a list's) values that wait, awaited together and put in place."""

    __slots__ = ("keys", "out")

    def __init__(self, out: Any, keys: list[Any]) -> None:
        self.out, self.keys = out, keys

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._settle().__await__()

    async def _settle(self) -> Any:
        out, keys = self.out, self.keys
        # Every sibling runs to its end even when one fails: none is cut off mid-read.
        values = await asyncio.gather(*(out[k] for k in keys), return_exceptions=True)
        for k, v in zip(keys, values, strict=True):
            if isinstance(v, BaseException):
                raise v
            out[k] = v
        return out


class PlanCache:
    """Compiled plans by (document text, operation name, permissions); None where unsupported."""

    def __init__(self, size: int = PLANS_KEPT) -> None:
        self.size = size
        self.plans: OrderedDict[tuple[str, str | None, frozenset[Any]], Plan | None] = OrderedDict()

    def get(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation_name: str | None,
        permissions: frozenset[Any],
    ) -> Plan | None:
        key = (query, operation_name, permissions)
        if key in self.plans:
            self.plans.move_to_end(key)
            return self.plans[key]
        plan = compile_plan(schema, document, operation_name, permissions)
        self.plans[key] = plan
        if len(self.plans) > self.size:
            self.plans.popitem(last=False)
        return plan


def compile_plan(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, permissions: frozenset[Any]
) -> Plan | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY or operations[0].directives:
        return None
    operation = operations[0]
    root = schema.query_type
    if root is None:
        return None
    compiler = Compiler(schema, document, permissions)
    try:
        fields = compiler.fields(root, [operation.selection_set])
    except Unsupported:
        return None
    return Plan(operation, compiler.fragments, root, fields)


PLANS = PlanCache()


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
        return await data if _awaitable(data) else data
    except Exception:
        if run.orphans:
            await asyncio.gather(*run.orphans, return_exceptions=True)
        raise


class FastExecution(SchemaExtension):
    """Answers a query with its compiled plan when there is one (after the cost was charged)."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        app_context = context.context
        settings = getattr(app_context, "settings", None)
        viewer = getattr(app_context, "viewer", None)
        document = context.graphql_document
        if (
            context.result is None
            and not context.pre_execution_errors
            and document is not None
            and context.query is not None
            and viewer is not None
            and getattr(settings, "fast_execution", False)
        ):
            schema = context.schema
            plan = PLANS.get(
                schema._schema, context.query, document, context.operation_name, frozenset(viewer.permissions)
            )
            if plan is not None:
                try:
                    data = await execute_plan(plan, schema, app_context, context.variables)
                except Exception as exc:  # Fallback, a domain error, a bad argument: graphql-core answers
                    logger.debug("compiled query fell back to graphql-core: %s", type(exc).__name__)
                    # Loads the plan left half-done (cancelled with their siblings) must not be shared.
                    app_context.loaders.clear()
                else:
                    context.result = ExecutionResult(data=data, errors=None)
        yield


__all__ = ["Fallback", "FastExecution", "PlanCache", "compile_plan", "execute_plan"]
