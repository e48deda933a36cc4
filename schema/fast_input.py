"""Batch inputs built without Strawberry's generic argument conversion.

Strawberry turns an input value into instances of the input classes field by
field, resolving each field's annotation and GraphQL name again for every
object: for 500 contacts or orders of a batch mutation that is most of the
request's Python time (profiled: more than the ingestion itself). graphql-core
has already validated and coerced the value (scalars parsed, enums as their
members, required fields present), so all that is left is the construction:
`fast_input(Class)` sets Strawberry's `from_input` hook (the definition's
documented hook for building a type's value) to a builder whose per-field
plan (GraphQL name, Python name, how to build the value) is worked out once.
The instances are the same as Strawberry would make: the same class, every
field set, defaults for the fields the client left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition

T = TypeVar("T", bound=type)
Build = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _builder(type_: Any, context: InputContext) -> Build:
    """How to build a value of the field type from graphql-core's coerced value."""
    while isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if isinstance(type_, StrawberryList):
        item = _builder(type_.of_type, context)
        if item is _same:
            return lambda values: None if values is None else list(values)
        return lambda values: None if values is None else [item(v) for v in values]
    definition = get_object_definition(type_)
    if definition is not None and definition.is_input:
        plan = _Plan(type_, context)
        return lambda value: None if value is None else plan.build(value)
    return _same  # scalars and enums: graphql-core's value is the Python value


class _Plan:
    def __init__(self, cls: type, context: InputContext) -> None:
        definition = get_object_definition(cls, strict=True)
        self.cls = cls
        # (GraphQL name, Python name, builder, default value, default factory)
        self.fields: list[tuple[str, str, Build, Any, Callable[[], Any] | None]] = []
        for field in definition.fields:
            factory = field.default_factory if field.default_factory is not dataclasses.MISSING else None
            # Required fields have no default: graphql-core never lets them be missing.
            default = field.default if field.default is not dataclasses.MISSING else None
            graphql_name = context.config.name_converter.from_field(field)
            build = _builder(field.resolve_type(type_definition=definition), context)
            self.fields.append((graphql_name, field.python_name, build, default, factory))

    def build(self, value: Mapping[str, Any]) -> Any:
        instance: Any = object.__new__(self.cls)
        attributes = instance.__dict__
        for graphql_name, python_name, build, default, factory in self.fields:
            if graphql_name in value:
                attributes[python_name] = build(value[graphql_name])
            else:
                attributes[python_name] = factory() if factory is not None else default
        return instance


def fast_input(cls: T) -> T:
    """Build `cls` (a @strawberry.input class) and the inputs nested in it with a plan made once."""
    plans: dict[int, _Plan] = {}

    def from_input(type_: type, value: Mapping[str, Any], context: InputContext) -> Any:
        plan = plans.get(id(context.config))
        if plan is None:
            plan = plans[id(context.config)] = _Plan(type_, context)
        return plan.build(value)

    get_object_definition(cls, strict=True).from_input = from_input
    return cls


# --- The batch mutations without graphql-core's generic execution -------------------------------
#
# graphql-core coerces a variable field by field through its generic coerce_input_value (and walks
# it once more to check its depth), then completes the payload field by field through Strawberry's
# resolver wrappers: for 500 contacts or orders that was ~0.25 ms of CPU per row, half of the app's
# (bench/ingest_throughput.py). FastMutations answers ingestContacts and recordOrders itself when the
# document is one of them alone, `input: $variable`, and the selection is what the read queries'
# compiled executor covers (schema/fast_plan.py: plain fields, resolvers, permissions checked):
#
# - the variable is coerced by a plan made once per input type, with graphql-core's own leaf
#   coercions and the fields' coerced defaults; anything irregular (an unknown or missing field, a
#   null where none may be, a scalar that does not coerce, a single value given for a list) makes it
#   hand the whole request to graphql-core before anything runs, which answers with its own errors;
# - the resolver is called as graphql-core would (the same arguments through Strawberry);
# - the payload is completed by the compiled executor's completers (schema/fast_exec.py Run).
#
# Once the resolver has run, its writes are committed: nothing can be run again. An exception from
# the resolver (or a null in a non-null field of the payload) answers as graphql-core does for a
# non-null root field: data null and the located error, which schema/errors.py masks.
