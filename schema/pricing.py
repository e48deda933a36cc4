"""Query cost: the price of an operation before execution (static, from the page sizes it
asks for) and after it (actual, counting the nodes each connection really returned).

Derived from the schema, so every field added later is priced:
- a field returning an object, or a list of objects, costs 1 plus its selection;
- a connection costs 2 + first (or last; 20 when neither is given) x the cost of one node;
- a Mutation root field costs 10 plus its payload's selection;
- scalars and enums cost nothing.
On abstract types (the Node interface) the dearest possible type counts.
schema/cost.py charges it to the key's bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_abstract_type,
    is_leaf_type,
    value_from_ast_untyped,
)
from graphql.type.definition import GraphQLInterfaceType
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

from schema.limits import is_connection
from schema.per_document import PerDocument

MAX_QUERY_COST = 1_000
DEFAULT_PAGE = 20
OBJECT_COST = 1
CONNECTION_COST = 2
MUTATION_COST = 10

MISSING = object()
# Introspection's root fields, priced like any other object field.
_META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}


class _Plan:
    """One document, with what pricing needs worked out once: the fields each selection
    collects on each type, merged selections, and which selections hold a connection.
    Plans are cached by document; strawberry's parser cache hands the same document
    object to every request with the same text, so a repeated operation is priced
    from memory."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.document = document
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self._collected: dict[tuple[int, str], dict[str, list[FieldNode]]] = {}
        self._merged: dict[tuple[int, ...], SelectionSetNode] = {}
        self._connections: dict[tuple[int, str], bool] = {}
        self._priced: dict[tuple[int, str], list[tuple[str, list[FieldNode]]]] = {}
        self._facts: dict[Any, tuple[Sequence[FieldNode], tuple[GraphQLNamedType, SelectionSetNode, bool] | None]] = {}
        # Static prices by (operation, page-size variables): a repeated operation costs a lookup.
        self.static_costs: dict[tuple[int, tuple[tuple[str, int], ...]], int] = {}
        # Prices of selections with no connection below: no variable changes them.
        self.fixed_costs: dict[tuple[int, str], int] = {}

    def merged(self, nodes: Sequence[FieldNode]) -> SelectionSetNode:
        """The selections of every node of one response key, as execution merges them."""
        key = tuple(id(n) for n in nodes)
        found = self._merged.get(key)
        if found is None:
            selections = tuple(s for n in nodes if n.selection_set for s in n.selection_set.selections)
            found = self._merged[key] = SelectionSetNode(selections=selections)
        return found

    def collect(self, selection_set: SelectionSetNode, runtime: GraphQLNamedType) -> dict[str, list[FieldNode]]:
        """Fields by response key, through the fragments that apply to `runtime`."""
        key = (id(selection_set), runtime.name)
        found = self._collected.get(key)
        if found is None:
            found = self._collected[key] = self._collect(selection_set, runtime, {}, frozenset())
        return found

    def priced(self, selection_set: SelectionSetNode, runtime: GraphQLNamedType) -> list[tuple[str, list[FieldNode]]]:
        """collect() without the fields that cost nothing whatever they return (leaves, __typename):
        a card's persona selects ~60 fields, ~15 of them objects, lists or connections."""
        key = (id(selection_set), runtime.name)
        found = self._priced.get(key)
        if found is None:
            found = self._priced[key] = [
                (name, nodes)
                for name, nodes in self.collect(selection_set, runtime).items()
                if (definition := self.definition(runtime, nodes[0].name.value)) is not None
                and not is_leaf_type(get_named_type(definition.type))
            ]
        return found

    def _collect(
        self,
        selection_set: SelectionSetNode,
        runtime: GraphQLNamedType,
        into: dict[str, list[FieldNode]],
        spread: frozenset[str],
    ) -> dict[str, list[FieldNode]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                into.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition.name.value if selection.type_condition else None
                if self._applies(condition, runtime):
                    self._collect(selection.selection_set, runtime, into, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spread:
                    continue
                if self._applies(fragment.type_condition.name.value, runtime):
                    self._collect(fragment.selection_set, runtime, into, spread | {name})
        return into

    def _applies(self, condition: str | None, runtime: GraphQLNamedType) -> bool:
        if condition is None or condition == runtime.name:
            return True
        condition_type = self.schema.get_type(condition)
        if condition_type is None or not is_abstract_type(condition_type) or not isinstance(runtime, GraphQLObjectType):
            return False
        return self.schema.is_sub_type(condition_type, runtime)

    def types(self, parent: GraphQLNamedType) -> list[GraphQLNamedType]:
        """The concrete types a selection on `parent` may meet."""
        if is_abstract_type(parent):
            return list(self.schema.get_possible_types(parent))
        return [parent]

    def facts(
        self, nodes: Sequence[FieldNode], parent: GraphQLNamedType
    ) -> tuple[GraphQLNamedType, SelectionSetNode, bool] | None:
        """What pricing a field needs, worked out once per document: its named type, its merged
        selection and whether it is a connection; None for a field that costs nothing
        (a leaf, __typename, or one validation has refused)."""
        key = (tuple(map(id, nodes)), parent.name)
        found = self._facts.get(key)
        if found is None:
            definition = self.definition(parent, nodes[0].name.value)
            named = get_named_type(definition.type) if definition is not None else None
            facts = None if named is None or is_leaf_type(named) else (named, self.merged(nodes), is_connection(named))
            found = self._facts[key] = (nodes, facts)  # holds the nodes: their ids stay theirs
        return found[1]

    def definition(self, parent: GraphQLNamedType, name: str) -> Any:
        if name in _META_FIELDS and parent is self.schema.query_type:
            return _META_FIELDS[name]
        if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return parent.fields.get(name)
        return None

    def has_connection(self, selection_set: SelectionSetNode, parent: GraphQLNamedType) -> bool:
        """Whether a connection lies anywhere below: only then does the data change the price."""
        key = (id(selection_set), parent.name)
        found = self._connections.get(key)
        if found is None:
            found = False
            for concrete in self.types(parent):
                for nodes in self.collect(selection_set, concrete).values():
                    definition = self.definition(concrete, nodes[0].name.value)
                    if definition is None:
                        continue
                    named = get_named_type(definition.type)
                    if is_connection(named) or (
                        not is_leaf_type(named) and self.has_connection(self.merged(nodes), named)
                    ):
                        found = True
                        break
                if found:
                    break
            self._connections[key] = found
        return found


_STATIC_COSTS_PER_PLAN = 64
_plan = PerDocument(lambda schema, document, _extra: _Plan(schema, document))


class _Pricing:
    """The prices of one plan under one set of variables (they set the page sizes)."""

    def __init__(self, plan: _Plan, variables: Mapping[str, Any]) -> None:
        self.plan = plan
        self.variables = variables
        self._static: dict[tuple[int, str], int] = {}

    def static(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType) -> int:
        """The price of a selection before execution: the dearest type it may meet."""
        if selection_set is None:
            return 0
        key = (id(selection_set), parent.name)
        # A selection without a connection below is priced once per document, not per request.
        prices = self._static if self.plan.has_connection(selection_set, parent) else self.plan.fixed_costs
        found = prices.get(key)
        if found is None:
            found = prices[key] = max(
                (
                    sum(self.field(nodes, concrete, MISSING) for nodes in fields.values())
                    for concrete in self.plan.types(parent)
                    if (fields := self.plan.collect(selection_set, concrete)) is not None
                ),
                default=0,
            )
        return found

    def actual(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, data: Any) -> int:
        """The price with what execution returned: connections count the nodes they gave."""
        if selection_set is None:
            return 0
        if not isinstance(data, dict) or not self.plan.has_connection(selection_set, parent):
            return self.static(selection_set, parent)
        concrete: GraphQLNamedType | None = parent
        if is_abstract_type(parent):
            typename = data.get("__typename")
            concrete = self.plan.schema.get_type(typename) if isinstance(typename, str) else None
            if concrete is None:
                return self.static(selection_set, parent)
        assert concrete is not None
        return sum(
            self.field(nodes, concrete, data.get(key, MISSING))
            for key, nodes in self.plan.priced(selection_set, concrete)
        )

    def _price(self, selection_set: SelectionSetNode, named: GraphQLNamedType, value: Any) -> int:
        if value is MISSING:
            return self.static(selection_set, named)
        if isinstance(value, list):  # a list of objects is priced as one: its dearest item
            if value and not self.plan.has_connection(selection_set, named):
                return self.static(selection_set, named)  # what every item's price would be
            return max((self.actual(selection_set, named, item) for item in value), default=0)
        return self.actual(selection_set, named, value)

    def root(self, operation: OperationDefinitionNode, data: Any) -> int:
        root = self.plan.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        is_mutation = operation.operation == OperationType.MUTATION
        total = 0
        for key, nodes in self.plan.collect(operation.selection_set, root).items():
            value = data.get(key, MISSING) if isinstance(data, dict) else MISSING
            if is_mutation:
                definition = self.plan.definition(root, nodes[0].name.value)
                if definition is not None:
                    named = get_named_type(definition.type)
                    below = 0 if value is None else self._price(self.plan.merged(nodes), named, value)
                    total += MUTATION_COST + below
            else:
                total += self.field(nodes, root, value)
        return total

    def field(self, nodes: Sequence[FieldNode], parent: GraphQLNamedType, value: Any) -> int:
        facts = self.plan.facts(nodes, parent)
        if facts is None:
            return 0  # a leaf, __typename, or a field validation has already refused
        named, merged, connection = facts
        if connection:
            return self._connection(nodes[0], merged, named, value)
        if value is None:
            return OBJECT_COST
        return OBJECT_COST + self._price(merged, named, value)

    def _connection(self, node: FieldNode, merged: SelectionSetNode, connection: GraphQLNamedType, value: Any) -> int:
        """2 + first x one node before execution; 2 + each node returned after it."""
        assert isinstance(connection, GraphQLObjectType)
        # Each way to the nodes (nodes, edges { node }) as (selection, node type, items returned).
        paths: list[tuple[SelectionSetNode, GraphQLNamedType, list[Any] | None]] = []
        for key, nodes in self.plan.collect(merged, connection).items():
            found = value.get(key) if isinstance(value, dict) else None
            name = nodes[0].name.value
            if name == "nodes":
                items = found if isinstance(found, list) else None
                paths.append((self.plan.merged(nodes), get_named_type(connection.fields["nodes"].type), items))
            elif name == "edges":
                edge = get_named_type(connection.fields["edges"].type)
                assert isinstance(edge, GraphQLObjectType)
                for edge_key, edge_nodes in self.plan.collect(self.plan.merged(nodes), edge).items():
                    if edge_nodes[0].name.value != "node":
                        continue
                    items = [e.get(edge_key) for e in found] if isinstance(found, list) else None
                    paths.append((self.plan.merged(edge_nodes), get_named_type(edge.fields["node"].type), items))
        if value is MISSING:
            one = max((OBJECT_COST + self.static(sel, t) for sel, t, _ in paths), default=0)
            return CONNECTION_COST + self._page_size(node) * one
        if value is None:
            return CONNECTION_COST
        returned = max((len(items) for _, _, items in paths if items is not None), default=0)
        if all(items is not None and len(items) == returned for _, _, items in paths) and not any(
            self.plan.has_connection(sel, t) for sel, t, _ in paths
        ):
            # No connection below a node: each returned node costs its static price.
            one = max((OBJECT_COST + self.static(sel, t) for sel, t, _ in paths), default=0)
            return CONNECTION_COST + returned * one
        total = CONNECTION_COST
        for index in range(returned):
            total += max(
                (
                    OBJECT_COST + self.actual(sel, t, items[index])
                    for sel, t, items in paths
                    if items is not None and index < len(items)
                ),
                default=0,
            )
        return total

    def _page_size(self, node: FieldNode) -> int:
        arguments = {a.name.value: a.value for a in node.arguments or ()}
        for name in ("first", "last"):
            value = arguments.get(name)
            if isinstance(value, VariableNode):
                raw = self.variables.get(value.name.value)
            elif isinstance(value, IntValueNode):
                raw = int(value.value)
            else:
                raw = value_from_ast_untyped(value) if value is not None else None
            if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
                return raw
        return DEFAULT_PAGE


def _variables_with_defaults(operation: OperationDefinitionNode, variables: Mapping[str, Any] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None:
            values[definition.variable.name.value] = value_from_ast_untyped(definition.default_value)
    values.update(variables or {})
    return values


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    data: Any = MISSING,
) -> int:
    """The cost of the operation: static when `data` is MISSING, actual when it is the result's data."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    plan = _plan(schema, document)
    values = _variables_with_defaults(operation, variables)
    if data is not MISSING:
        return _Pricing(plan, values).root(operation, data)
    # Only Int variables can set a page size, so only they key the static price.
    key = (id(operation), tuple(sorted((k, v) for k, v in values.items() if type(v) is int)))
    found = plan.static_costs.get(key)
    if found is None:
        if len(plan.static_costs) >= _STATIC_COSTS_PER_PLAN:
            plan.static_costs.clear()  # page sizes are the client's to choose: keep this bounded
        found = plan.static_costs[key] = _Pricing(plan, values).root(operation, MISSING)
    return found


__all__ = ["CONNECTION_COST", "MAX_QUERY_COST", "MISSING", "MUTATION_COST", "OBJECT_COST", "query_cost"]
