"""How the compiled executor calls a resolver itself, as strawberry's get_arguments would:
the source as `self` and under its root/parent parameter names, the Info under its name, and
each argument as graphql-core coerced it. strawberry's own conversion looks every argument's
annotation up anew on each call (a third of its cost in the card was the history
connections' four page arguments); for the scalars it converts nothing, so where every
argument is one of those the executor passes them on itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import GraphQLField, GraphQLNonNull, GraphQLScalarType
from strawberry.extensions.field_extension import FieldExtension
from strawberry.relay import GlobalID
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.field import StrawberryField


@dataclass(frozen=True, slots=True)
class DirectCall:
    """How get_arguments passes what a resolver asks for: the source as `self` and under its
    root/parent parameter names, the Info under its name, and each argument given (by its
    GraphQL name, as graphql-core coerced it) under its Python name."""

    takes_self: bool
    source_names: tuple[str, ...]
    info_name: str | None
    arguments: tuple[tuple[str, str], ...] = ()


def direct_call(field: StrawberryField, definition: GraphQLField, names: NameConverter) -> DirectCall | None:
    """None where strawberry's conversion of the arguments does more than pass them on (an
    argument of an input, enum or list type, a relay GlobalID or a Maybe, an extension that
    maps the arguments): get_arguments calls those. A scalar's value is graphql-core's coerced
    one, which strawberry passes as it is, under the Python name of the argument the schema's
    name converter (`names`) gave its GraphQL name; an argument not given is left to the
    default."""
    resolver = field.base_resolver
    assert resolver is not None
    if any(type(e).map_arguments is not FieldExtension.map_arguments for e in field.extensions):
        return None
    if not all(isinstance(_nullable(argument.type), GraphQLScalarType) for argument in definition.args.values()):
        return None
    if any(_converted_by_strawberry(argument.type) for argument in field.arguments):
        return None
    python_names = {names.from_argument(argument): argument.python_name for argument in field.arguments}
    if set(python_names) != set(definition.args):
        return None
    sources = tuple(p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None)
    info = resolver.info_parameter
    arguments = tuple(python_names.items())
    return DirectCall(resolver.self_parameter is not None, sources, info.name if info is not None else None, arguments)


def _nullable(type_: Any) -> Any:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def _converted_by_strawberry(type_: Any) -> bool:
    """The scalars strawberry does convert: a relay GlobalID, and anything under Maybe."""
    if isinstance(type_, StrawberryMaybe):
        return True
    return (type_.of_type if isinstance(type_, StrawberryOptional) else type_) is GlobalID


__all__ = ["DirectCall", "direct_call"]
