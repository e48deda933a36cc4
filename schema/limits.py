"""Limits checked before a document is validated or run: tokens, depth,
aliases, directives and one redeemDiscount per operation.

Each limit is a strawberry extension passed to the schema as a class (a
fresh instance per request). The shape checks run in `on_validate`, before
the (cached) validation: an oversized document costs one cheap walk and gets
exactly one BAD_QUERY error, never a pile of validation errors. Everything is
derived from the served schema (which types are connections, which field is
the Mutation root's redeemDiscount), so new fields are covered as they come.

Depth counts a connection as two levels whichever way it is read:
`orders { edges { node { id } } }` and `orders { nodes { id } }` both have
depth 4. Introspection subtrees are left to graphql-core's
MaxIntrospectionDepthRule, which refuses the circular introspection queries
(`types { fields { type { fields ... } } }`) that plain depth would miss.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    validate,
)
from graphql.type.definition import GraphQLInterfaceType
from graphql.validation import ASTValidationRule, MaxIntrospectionDepthRule
from strawberry.extensions import MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.schema.schema import validate_document

from schema.errors import BAD_QUERY
from schema.per_document import PerDocument

MAX_TOKENS = 2_500
MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_DIRECTIVES_PER_SELECTION = 4
MAX_DIRECTIVES = 50
MAX_REDEEMS = 1
REDEEM_FIELD = "redeemDiscount"


def is_connection(type_: GraphQLNamedType | None) -> bool:
    """A Relay connection, recognised by its shape: pageInfo plus edges or nodes."""
    if not isinstance(type_, GraphQLObjectType):
        return False
    fields = type_.fields
    return "pageInfo" in fields and ("edges" in fields or "nodes" in fields)


def field_type(parent: GraphQLNamedType | None, name: str) -> GraphQLNamedType | None:
    if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)) and name in parent.fields:
        named: GraphQLNamedType = get_named_type(parent.fields[name].type)
        return named
    return None


@dataclass
class Shape:
    """What the limits measure in one operation (fragments expanded where spread)."""

    depth: int = 0
    aliases: int = 0
    directives: int = 0
    most_directives_on_one_selection: int = 0
    redeems: int = 0
    introspection: bool = False


class _ShapeWalk:
    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.fragments = fragments
        self.shape = Shape()

    def _directives(self, count: int) -> None:
        self.shape.directives += count
        self.shape.most_directives_on_one_selection = max(self.shape.most_directives_on_one_selection, count)

    def depth(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        on_root_mutation: bool,
        spread: frozenset[str],
    ) -> int:
        """The depth below `selection_set`, counting aliases, directives and redeems on the way."""
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            self._directives(len(selection.directives or ()))
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if selection.alias is not None:
                    self.shape.aliases += 1
                if on_root_mutation and name == REDEEM_FIELD:
                    self.shape.redeems += 1
                if name.startswith("__"):
                    self.shape.introspection = self.shape.introspection or name in {"__schema", "__type"}
                    continue  # introspection: MaxIntrospectionDepthRule's business
                # Relay's `nodes` shortcut stands for `edges { node }`: two levels.
                levels = 2 if name == "nodes" and is_connection(parent) else 1
                child = field_type(parent, name)
                deepest = max(deepest, levels + self.depth(selection.selection_set, child, False, spread))
            elif isinstance(selection, InlineFragmentNode):
                inner = self._condition(selection.type_condition.name.value if selection.type_condition else None)
                below = self.depth(selection.selection_set, inner or parent, on_root_mutation, spread)
                deepest = max(deepest, below)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spread:
                    continue  # unknown or cyclic: validation reports it
                inner = self._condition(fragment.type_condition.name.value)
                below = self.depth(fragment.selection_set, inner or parent, on_root_mutation, spread | {name})
                deepest = max(deepest, below)
        return deepest

    def _condition(self, type_name: str | None) -> GraphQLNamedType | None:
        return self.schema.get_type(type_name) if type_name else None


@dataclass(frozen=True)
class _Measured:
    operations: list[tuple[OperationDefinitionNode, Shape]]
    introspection_too_deep: bool


def _measure_document(schema: GraphQLSchema, document: DocumentNode, _extra: object) -> _Measured:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        walk = _ShapeWalk(schema, fragments)
        walk._directives(len(definition.directives or ()))
        root = schema.get_root_type(definition.operation)
        is_mutation = definition.operation == OperationType.MUTATION
        walk.shape.depth = walk.depth(definition.selection_set, root, is_mutation, frozenset())
        operations.append((definition, walk.shape))
    # Fragments are walked where they are spread; a document may also define unused ones.
    introspective = any(s.introspection for _, s in operations) or bool(fragments)
    too_deep = introspective and bool(validate(schema, document, [MaxIntrospectionDepthRule]))
    return _Measured(operations, too_deep)


# The document's shapes, once per document.
_measure = PerDocument(_measure_document)


def shapes(schema: GraphQLSchema, document: DocumentNode) -> list[tuple[OperationDefinitionNode, Shape]]:
    return _measure(schema, document).operations


def _name(operation: OperationDefinitionNode) -> str:
    return f"Operation '{operation.name.value}'" if operation.name else "The operation"


class DocumentLimit(SchemaExtension):
    """A limit on the shape of the document, checked before validation."""

    def problem(self, schema: GraphQLSchema, document: DocumentNode) -> str | None:
        raise NotImplementedError

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if not context.pre_execution_errors and document is not None:
            problem = self.problem(context.schema._schema, document)
            if problem is not None:
                context.pre_execution_errors = [GraphQLError(problem, extensions={"code": BAD_QUERY})]
        yield


class TokenLimit(MaxTokensLimiter):
    """At most MAX_TOKENS lexical tokens; the parser stops at the limit."""

    def __init__(self) -> None:
        super().__init__(max_token_count=MAX_TOKENS)


class DepthLimit(DocumentLimit):
    def problem(self, schema: GraphQLSchema, document: DocumentNode) -> str | None:
        for operation, shape in shapes(schema, document):
            if shape.depth > MAX_DEPTH:
                return (
                    f"{_name(operation)} is {shape.depth} levels deep; at most {MAX_DEPTH} are allowed "
                    "(a connection counts two levels)."
                )
        if _measure(schema, document).introspection_too_deep:
            return "The introspection query nests fields, interfaces or possibleTypes too deeply."
        return None


class AliasLimit(DocumentLimit):
    def problem(self, schema: GraphQLSchema, document: DocumentNode) -> str | None:
        for operation, shape in shapes(schema, document):
            if shape.aliases > MAX_ALIASES:
                return f"{_name(operation)} uses {shape.aliases} aliases; at most {MAX_ALIASES} are allowed."
        return None


class DirectiveLimit(DocumentLimit):
    def problem(self, schema: GraphQLSchema, document: DocumentNode) -> str | None:
        for operation, shape in shapes(schema, document):
            if shape.most_directives_on_one_selection > MAX_DIRECTIVES_PER_SELECTION:
                return (
                    f"{_name(operation)} puts {shape.most_directives_on_one_selection} directives on one "
                    f"selection; at most {MAX_DIRECTIVES_PER_SELECTION} are allowed."
                )
            if shape.directives > MAX_DIRECTIVES:
                return f"{_name(operation)} uses {shape.directives} directives; at most {MAX_DIRECTIVES} are allowed."
        return None


class OneRedeemPerOperation(DocumentLimit):
    """Redemptions spend points: one per operation keeps a retry from spending twice in one go."""

    def problem(self, schema: GraphQLSchema, document: DocumentNode) -> str | None:
        for operation, shape in shapes(schema, document):
            if shape.redeems > MAX_REDEEMS:
                return f"{_name(operation)} calls {REDEEM_FIELD} {shape.redeems} times; at most once per operation."
        return None


class CachedParser(ParserCache):
    """strawberry's ParserCache, except that a document that does not parse (a syntax
    error, or over the token limit) is left to strawberry's own parse step, whose error
    goes through the extensions (and so gets its code) instead of escaping past them."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLError:
            context.graphql_document = None
        yield


def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    return validate_document(schema, document, rules)


_validated = PerDocument(_validate)


class CachedValidation(SchemaExtension):
    """Validation once per document (and set of rules), like strawberry's ValidationCache
    but keyed by the document's identity (schema/per_document.py); skipped when a limit has
    already refused the document (it would otherwise overwrite that one error with the full
    validation's)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not context.pre_execution_errors and context.graphql_document is not None:
            rules = tuple(context.validation_rules)
            schema = context.schema._schema
            errors = _validated(schema, context.graphql_document, rules)
            context.pre_execution_errors = errors
        yield


# In order: the token limit applies while parsing; the shape limits run before validation.
LIMITS: tuple[type[SchemaExtension], ...] = (TokenLimit, DepthLimit, AliasLimit, DirectiveLimit, OneRedeemPerOperation)
