"""Node, PageInfo and the generic connection every list that grows uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
)

from resolvers.pagination import Page, Selection
from schema.fast_plan import Completed, FieldCollector, Unsupported


@strawberry.interface(description="An object with a global ID, fetchable with Query.node.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global ID.")


@strawberry.type(description="Where a page sits in its connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[object]) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.start_cursor,
            end_cursor=page.end_cursor,
        )


NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")


def selected_names(info: strawberry.Info, path: tuple[str, ...] = ()) -> Iterator[str]:
    """The names of the fields selected at `path` below the field being resolved, through
    fragments (a fragment's fields count as its parent's own). Read from the document's
    syntax tree: strawberry's `info.selected_fields` converts every argument and directive
    of the subtree first, a cost per connection resolved (5% of the card's CPU)."""
    raw = info._raw_info
    return _names_below([node.selection_set for node in raw.field_nodes], path, raw.fragments)


def _names_below(
    sets: Iterable[SelectionSetNode | None], path: tuple[str, ...], fragments: dict[str, FragmentDefinitionNode]
) -> Iterator[str]:
    for selection_set in sets:
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if not path:
                    yield selection.name.value
                elif selection.name.value == path[0]:
                    yield from _names_below([selection.selection_set], path[1:], fragments)
            elif isinstance(selection, InlineFragmentNode):
                yield from _names_below([selection.selection_set], path, fragments)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
                yield from _names_below([fragments[selection.name.value].selection_set], path, fragments)


def asks_total_count(info: strawberry.Info) -> bool:
    """Whether the connection field being resolved selects totalCount (through fragments too)."""
    return "totalCount" in selected_names(info)


@dataclass(frozen=True, slots=True)
class EdgeShape:
    """What a connection's `edges` select, for a page whose nodes came in response form: each
    (response key, "cursor" | "node" | "__typename") in selection order, and the edge's type."""

    keys: tuple[tuple[str, str], ...]
    type_name: str

    def of(self, cursors: Sequence[str], nodes: Sequence[Any]) -> Completed:
        edges = Completed()
        for cursor, node in zip(cursors, nodes, strict=True):
            edges.append({key: {"cursor": cursor, "node": node}.get(what, self.type_name) for key, what in self.keys})
        return edges


@dataclass(frozen=True, slots=True)
class PageSelection:
    """What the connection being resolved asks of its page's nodes (through `nodes`, `edges`
    or both, the same fields each way), and the shape of its edges when they are selected."""

    nodes: Selection
    edges: EdgeShape | None


def page_selection(info: strawberry.Info) -> PageSelection | None:
    """The connection's selection of its nodes as plain data, fragments applied; None where it
    is more than one node list can answer: nodes under two keys, or selected differently
    under `nodes` and `edges { node }`, a directive, a field with arguments."""
    raw = info._raw_info
    # The same syntax tree each time a document is asked again (parsed documents are kept):
    # its answer is kept by the field nodes' identity, which the entry holds on to.
    key = tuple(map(id, raw.field_nodes))
    kept = _page_selections.get(key)
    if kept is None:
        if len(_page_selections) >= PAGE_SELECTIONS_KEPT:
            _page_selections.clear()
        kept = _page_selections[key] = (raw.field_nodes, _page_selection(raw))
    return kept[1]


PAGE_SELECTIONS_KEPT = 1_000
_page_selections: dict[tuple[int, ...], tuple[list[FieldNode], PageSelection | None]] = {}


def _page_selection(raw: GraphQLResolveInfo[Any]) -> PageSelection | None:
    connection = get_named_type(raw.return_type)
    if not isinstance(connection, GraphQLObjectType):
        return None
    collector = FieldCollector(raw.schema, raw.fragments)
    try:
        fields = _collected(collector, connection, [n.selection_set for n in raw.field_nodes])
        found: list[Selection | None] = []
        edges = None
        node_type = get_named_type(connection.fields["nodes"].type)
        for nodes in fields.values():
            name = nodes[0].name.value
            if name == "nodes":
                found.append(_plain(collector, node_type, [n.selection_set for n in nodes]))
            elif name == "edges":
                edge = get_named_type(connection.fields["edges"].type)
                assert isinstance(edge, GraphQLObjectType)
                keys = []
                for key, below in _collected(collector, edge, [n.selection_set for n in nodes]).items():
                    if below[0].name.value == "node":
                        found.append(_plain(collector, node_type, [n.selection_set for n in below]))
                    keys.append((key, below[0].name.value))
                edges = EdgeShape(tuple(keys), edge.name)
    except Unsupported:
        return None
    if not found or found[0] is None or any(other != found[0] for other in found):
        return None
    return PageSelection(found[0], edges)


def _collected(
    collector: FieldCollector, parent: GraphQLObjectType, sets: Iterable[SelectionSetNode | None]
) -> dict[str, list[FieldNode]]:
    fields: dict[str, list[FieldNode]] = {}
    for selection_set in sets:
        if selection_set is not None:
            collector.collect(parent, selection_set, fields)
    return fields


def _plain(collector: FieldCollector, parent: Any, sets: list[SelectionSetNode | None]) -> Selection | None:
    if not isinstance(parent, GraphQLObjectType):
        return None
    selection: list[tuple[str, str, Selection | None]] = []
    for key, nodes in _collected(collector, parent, sets).items():
        name = nodes[0].name.value
        if any(n.name.value != name or n.arguments for n in nodes):
            return None
        below = None
        if any(n.selection_set is not None for n in nodes):
            definition = parent.fields.get(name)
            if definition is None:
                return None
            below = _plain(collector, get_named_type(definition.type), [n.selection_set for n in nodes])
            if below is None:
                return None
        selection.append((key, name, below))
    return tuple(selection)


@strawberry.type(description="One item of a page with the cursor to continue from it.")
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="A page of a list, newest first; page with first/after or last/before.")
class Connection(Generic[NodeT]):
    @strawberry.field
    def edges(self) -> list[Edge[NodeT]]:
        # Made when selected: a card reads its pages' nodes, not their edges and cursors.
        if self.edge_shape is not None:
            return self.edge_shape.of(self.cursors, self.nodes)
        return [Edge(cursor=c, node=n) for c, n in zip(self.cursors, self.nodes, strict=True)]

    nodes: list[NodeT]
    page_info: PageInfo
    cursors: strawberry.Private[Sequence[str]]
    count: strawberry.Private[Callable[[], Awaitable[int]]]
    # Set when the nodes came in response form (`answered`): the edges are made in it too.
    edge_shape: strawberry.Private[EdgeShape | None] = None

    @strawberry.field(description="How many items the whole list holds.")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def of(
        cls,
        page: Page[RowT],
        to_node: Callable[[RowT], NodeT],
        count: Callable[[], Awaitable[int]],
    ) -> Connection[NodeT]:
        nodes = [to_node(row) for row in page.items]
        return cls(nodes=nodes, page_info=PageInfo.of(page), cursors=page.cursors, count=count)  # type: ignore[arg-type]

    @classmethod
    def answered(
        cls, page: Page[Any], count: Callable[[], Awaitable[int]], edges: EdgeShape | None
    ) -> Connection[NodeT]:
        """A page whose rows carry their nodes in response form (`row.node`), for the
        compiled executor to pass on as they are (and its edges, made in that form too)."""
        nodes = Completed(row.node for row in page.items)
        return cls(nodes=nodes, page_info=PageInfo.of(page), cursors=page.cursors, count=count, edge_shape=edges)
