"""Compiling a read query into plans for the compiled executor (schema/fast_exec.py).

A query is compiled once per (document, operation, permission set) into a tree
of plans: for each selected field its response key, the strawberry field,
whether it is a plain attribute (most are) or has a resolver, and a completion
function made for its return type (non-null check, list, leaf serialization,
object, or, for interfaces and unions, one plan per type the value may be,
picked by the value's strawberry type at run time).

What the compiled form does not cover makes the document unsupported (None):
mutations, introspection, directives on the query, fields with extensions other
than the permission check, and a field the viewer may not see (graphql-core
answers that one with null and a FORBIDDEN error).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)
from strawberry.schema.name_converter import NameConverter
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from permissions.fields import PermissionCheck
from schema.direct_call import DirectCall, direct_call

if TYPE_CHECKING:
    from schema.fast_exec import Run

PLANS_KEPT = 256


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
    # A resolver whose arguments strawberry would pass on unconverted (scalars, or none), nor an
    # extension that reshapes them: called as get_arguments would call it (schema/direct_call.py),
    # with one Info per field and request.
    direct: DirectCall | None = None
    # A plain attribute of a leaf type: its completed value is final (never awaitable).
    plain_leaf: bool = False


@dataclass(slots=True)
class Plan:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    fields: list[FieldPlan]


class Completed(list[Any]):
    """A list a resolver answered already in response form (a history page's nodes that the
    database built as JSON): the compiled executor passes it on as it is. Only made while
    the compiled executor runs the request (Context.compiled): graphql-core would not."""


class Unsupported(Exception):
    """The document has something the compiled form does not cover (at compile time)."""


def awaitable(value: Any) -> bool:
    return hasattr(value, "__await__")


class FieldCollector:
    """A selection's fields by response key, through the fragments that apply to a type."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.names: NameConverter = schema._strawberry_schema.config.name_converter  # type: ignore[attr-defined]
        self.fragments = fragments

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


class Compiler(FieldCollector):
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, permissions: frozenset[Any]) -> None:
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        super().__init__(schema, fragments)
        self.permissions = permissions

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
            direct=None if basic else direct_call(field, definition, self.names),
            plain_leaf=basic and is_leaf_type(get_named_type(definition.type)),
        )

    def completer(self, type_: GraphQLOutputType, sub_sets: list[SelectionSetNode]) -> Complete:
        if isinstance(type_, GraphQLNonNull) and is_leaf_type(type_.of_type):
            serialize_present = serializer(type_.of_type)

            def non_null_leaf(value: Any, _run: Run) -> Any:
                if value is None:
                    raise Fallback("null in a non-null field")
                return serialize_present(value)

            return non_null_leaf
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
                if value is None or type(value) is Completed:
                    return value
                items: list[Any] = []
                waits: list[tuple[Any, Any]] = []
                try:
                    for n, v in enumerate(value):
                        items.append(run.place(item(v, run), items, n, waits))
                except BaseException:
                    run.orphaned(c[k] for c, k in waits)
                    raise
                return run.settle(items, waits) if waits else items

            return listed
        if is_leaf_type(type_):
            serialize = serializer(type_)

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


_SAME_WHEN: dict[GraphQLLeafType, type] = {GraphQLString: str, GraphQLBoolean: bool, GraphQLID: str}
_INT_RANGE = range(-(2**31), 2**31)


def serializer(type_: GraphQLLeafType) -> Callable[[Any], Any]:
    """The leaf type's `serialize`, with the common cases answered first: a str for String or ID,
    a bool for Boolean, an int in range for Int are their own serialized form, and an enum
    member's name is looked up (strawberry's enum serializer scans the enum's values and reads
    `.value` of each: ~500 leaves of a card go through here)."""
    serialize = type_.serialize
    same = _SAME_WHEN.get(type_)
    if same is not None:
        return lambda value: value if type(value) is same else serialize(value)
    if type_ is GraphQLInt:
        return lambda value: value if type(value) is int and value in _INT_RANGE else serialize(value)
    members = getattr(type_, "wrapped_cls", None)
    if isinstance(type_, GraphQLEnumType) and isinstance(members, type) and issubclass(members, Enum):
        names: dict[Any, str] = {}
        for member in members:
            # The first name whose value is the member's, as strawberry's serializer picks it.
            name = next((n for n, v in type_.values.items() if v.value == member.value), None)
            if name is not None:
                names[member] = name

        def enum_name(value: Any) -> Any:
            name = names.get(value) if type(value) is members else None
            return name if name is not None else serialize(value)

        return enum_name
    return serialize


def _leaf_identity(value: Any, _run: Run) -> Any:
    return value


P = TypeVar("P")
Compile = Callable[[GraphQLSchema, DocumentNode, "str | None", frozenset[Any]], "P | None"]


class PlanCache(Generic[P]):
    """Compiled plans by (schema, document text, operation name, permissions); None where
    unsupported. The read queries' plans and the batch mutations' each keep one."""

    def __init__(self, compile_: Compile[P], size: int = PLANS_KEPT) -> None:
        self.compile = compile_
        self.size = size
        self.plans: OrderedDict[tuple[int, str, str | None, frozenset[Any]], P | None] = OrderedDict()

    def get(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation_name: str | None,
        permissions: frozenset[Any],
    ) -> P | None:
        key = (id(schema), query, operation_name, permissions)
        if key in self.plans:
            self.plans.move_to_end(key)
            return self.plans[key]
        plan = self.compile(schema, document, operation_name, permissions)
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
    return Plan(operation, compiler.fragments, fields)


PLANS = PlanCache(compile_plan)


class VettedTexts:
    """Query texts (with their operation) that passed every check before execution against a
    schema and were answered by their compiled plan, with their parsed documents: schema/vetted.py
    answers them again without strawberry's pipeline. The most recently answered are kept."""

    def __init__(self, size: int = PLANS_KEPT) -> None:
        self.size = size
        self.documents: OrderedDict[tuple[int, str, str | None], tuple[GraphQLSchema, DocumentNode]] = OrderedDict()

    def add(self, schema: GraphQLSchema, query: str, operation_name: str | None, document: DocumentNode) -> None:
        keys = [(id(schema), query, operation_name)]
        if sum(isinstance(d, OperationDefinitionNode) for d in document.definitions) == 1:
            keys.append((id(schema), query, None))  # asked without a name, the only operation runs
        for key in keys:
            self.documents[key] = (schema, document)  # held: the schema's id stays its own
            self.documents.move_to_end(key)
        while len(self.documents) > self.size:
            self.documents.popitem(last=False)

    def get(self, schema: GraphQLSchema, query: str, operation_name: str | None) -> DocumentNode | None:
        found = self.documents.get((id(schema), query, operation_name))
        return found[1] if found is not None and found[0] is schema else None


VETTED = VettedTexts()
