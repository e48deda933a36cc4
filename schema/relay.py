"""Node, PageInfo and the generic connection every list that grows uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from graphql import FieldNode, FragmentDefinitionNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

from resolvers.pagination import Page
from schema.fast_plan import Completed


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


@strawberry.type(description="One item of a page with the cursor to continue from it.")
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="A page of a list, newest first; page with first/after or last/before.")
class Connection(Generic[NodeT]):
    @strawberry.field
    def edges(self) -> list[Edge[NodeT]]:
        # Made when selected: a card reads its pages' nodes, not their edges and cursors.
        return [Edge(cursor=c, node=n) for c, n in zip(self.cursors, self.nodes, strict=True)]

    nodes: list[NodeT]
    page_info: PageInfo
    cursors: strawberry.Private[Sequence[str]]
    count: strawberry.Private[Callable[[], Awaitable[int]]]

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
    def answered(cls, page: Page[Any], count: Callable[[], Awaitable[int]]) -> Connection[NodeT]:
        """A page whose rows carry their nodes in response form (`row.node`), for the
        compiled executor to pass on as they are."""
        nodes = Completed(row.node for row in page.items)
        return cls(nodes=nodes, page_info=PageInfo.of(page), cursors=page.cursors, count=count)
