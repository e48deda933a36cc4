"""ingestContacts and recordOrders without graphql-core's generic execution.

A batch mutation's request is mostly its input (500 contacts or orders) and its
payload (500 results): graphql-core coerces the variable value by walking the
input type for every object, and completes the payload field by field. For a
document that is one of the two mutations alone with `input: $variable`, the
variable is coerced here by a plan built once per input type (graphql-core's own
leaf coercions and coerced defaults), the resolver is called as graphql-core
calls it, and the payload is completed by the read executor's compiled
completers (schema/fast_plan.py). A variable that does not coerce here hands the
request to graphql-core before anything runs, which answers with its own errors;
tests/test_ingest_fast.py holds both paths to the same answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLBoolean,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    NamedTypeNode,
    NonNullTypeNode,
    OperationType,
    Undefined,
    VariableNode,
    is_leaf_type,
    is_required_input_field,
    located_error,
)
from graphql.execution.get_variable_signature import GraphQLVariableSignature, get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.utilities.coerce_input_value import coerce_default_value
from graphql.utilities.get_operation_ast import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from schema.fast_exec import Run, _start, plan_for
from schema.fast_plan import Compiler, FieldPlan, Plan, PlanCache, Unsupported, awaitable

BATCH_MUTATIONS = frozenset({"ingestContacts", "recordOrders"})
_BUILT_IN: dict[str, Any] = {"String": GraphQLString, "ID": GraphQLID, "Boolean": GraphQLBoolean}
_AS_GIVEN: dict[str, type] = {"String": str, "ID": str, "Boolean": bool}


class _Invalid(Exception):
    """The variable does not coerce here: graphql-core answers the request."""


Coerce = Callable[[Any], Any]


def _input_coercer(type_: Any, made: dict[str, Coerce]) -> Coerce:
    """graphql-core's coerce_input_value for values that coerce; _Invalid for any other value."""
    if isinstance(type_, GraphQLNonNull):
        inner = _input_coercer(type_.of_type, made)

        def non_null(value: Any) -> Any:
            if value is None:
                raise _Invalid
            return inner(value)

        return non_null
    if isinstance(type_, GraphQLList):
        item = _input_coercer(type_.of_type, made)

        def listed(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not list:
                raise _Invalid  # e.g. one value for a list of one: graphql-core's business
            return [item(v) for v in value]

        return listed
    if is_leaf_type(type_):
        coerce_leaf = type_.coerce_input_value

        def leaf(value: Any) -> Any:
            if value is None:
                return None
            try:
                coerced = coerce_leaf(value)
            except Exception as e:
                raise _Invalid from e
            if coerced is Undefined:
                raise _Invalid
            return coerced

        name: str = type_.name
        exact = _AS_GIVEN.get(name) if _BUILT_IN.get(name) is type_ else None
        if exact is None:
            return leaf

        def as_given(value: Any) -> Any:
            # graphql-core's String, ID and Boolean give a str (a bool) back as it is.
            return value if type(value) is exact else leaf(value)

        return as_given
    assert isinstance(type_, GraphQLInputObjectType)
    if type_.is_one_of:
        raise _Unsupported("oneOf input")
    if type_.name in made:
        return made[type_.name]
    names = frozenset(type_.fields)
    # (GraphQL name, out name, coerce, required, coerced default or Undefined)
    fields: list[tuple[str, str, Coerce, bool, Any]] = []
    out_type = type_.out_type

    def input_object(value: Any) -> Any:
        if type(value) is not dict or not names.issuperset(value):
            raise _Invalid
        coerced: dict[str, Any] = {}
        for name, out_name, coerce, required, default in fields:
            if name in value:
                coerced[out_name] = coerce(value[name])
            elif required:
                raise _Invalid
            elif default is not Undefined:
                coerced[out_name] = default
        return out_type(coerced)

    made[type_.name] = input_object  # before the fields: an input type may refer to itself
    for name, field in type_.fields.items():
        fields.append(
            (
                name,
                field.out_name or name,
                _input_coercer(field.type, made),
                is_required_input_field(field),
                coerce_default_value(field),
            )
        )
    return input_object


class _Unsupported(Exception):
    """The document is not one FastMutations answers (at compile time)."""


@dataclasses.dataclass(slots=True)
class MutationPlan:
    plan: Plan  # the operation and its one root field
    field: FieldPlan  # the mutation's
    variable: str
    signature: GraphQLVariableSignature
    coerce: Coerce


def compile_mutation(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, permissions: frozenset[Any]
) -> MutationPlan | None:
    """The plan for a batch mutation document, or None where graphql-core should run it."""
    try:
        operation = get_operation_ast(document, operation_name)
    except Exception:
        return None
    root = schema.mutation_type
    if operation is None or operation.operation != OperationType.MUTATION or operation.directives or root is None:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    node = selections[0]
    name = node.name.value
    if name not in BATCH_MUTATIONS or node.directives or node.selection_set is None:
        return None
    definition = root.fields.get(name)
    field = (definition.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF) if definition else None
    if not isinstance(field, StrawberryField) or field.extensions or field.base_resolver is None:
        return None
    # input: $variable, declared as exactly the argument's type (InputType!), with no default.
    arguments = node.arguments or ()
    if len(arguments) != 1 or arguments[0].name.value != "input" or set(definition.args) != {"input"}:
        return None
    value = arguments[0].value
    argument_type = definition.args["input"].type
    if not isinstance(value, VariableNode) or not isinstance(argument_type, GraphQLNonNull):
        return None
    variables = operation.variable_definitions or ()
    if len(variables) != 1 or variables[0].variable.name.value != value.name.value:
        return None
    var = variables[0]
    if var.default_value is not None or var.directives:
        return None
    if not (
        isinstance(var.type, NonNullTypeNode)
        and isinstance(var.type.type, NamedTypeNode)
        and var.type.type.name.value == argument_type.of_type.name
    ):
        return None
    signature = get_variable_signature(schema, var)
    if not isinstance(signature, GraphQLVariableSignature):
        return None
    compiler = Compiler(schema, document, permissions)
    try:
        coerce = _input_coercer(argument_type, {})
        complete = compiler.completer(definition.type, [node.selection_set])
    except (Unsupported, _Unsupported):
        return None
    key = node.alias.value if node.alias else name
    field_plan = FieldPlan(key, None, None, field, definition, [node], root, complete, True)
    return MutationPlan(
        Plan(operation, compiler.fragments, [field_plan]), field_plan, value.name.value, signature, coerce
    )


MUTATION_PLANS = PlanCache(compile_mutation, size=64)


async def execute_mutation(plan: MutationPlan, strawberry_schema: Any, context: Any, raw: dict[str, Any]) -> Any:
    """The ExecutionResult of the batch mutation; raises _Invalid (before anything ran) for graphql-core."""
    if plan.variable not in raw:
        raise _Invalid
    value = raw[plan.variable]
    coerced = plan.coerce(value)
    variables = VariableValues({plan.variable: VariableValueSource(plan.signature, value)}, {plan.variable: coerced})
    run = Run(plan.plan, strawberry_schema, context, variables)
    f = plan.field
    try:
        payload = _start(run.resolve(f, None))
        if awaitable(payload):
            payload = await payload
        data = f.complete(payload, run)
        if awaitable(data):
            data = await data
    except Exception as exc:
        if run.orphans:
            await asyncio.gather(*run.orphans, return_exceptions=True)
        return ExecutionResult(data=None, errors=[located_error(exc, f.nodes, [f.key])])
    return ExecutionResult(data={f.key: data}, errors=None)


class FastMutations(SchemaExtension):
    """Answers ingestContacts and recordOrders with a compiled plan when the document allows (after
    the cost was charged): in the schema's extensions, just before FastExecution."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        plan = plan_for(context, MUTATION_PLANS)
        if plan is not None:
            # _Invalid: graphql-core coerces the variables again and answers with its errors.
            with contextlib.suppress(_Invalid):
                context.result = await execute_mutation(plan, context.schema, context.context, context.variables or {})
        yield
