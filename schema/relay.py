"""Node, PageInfo and the generic connection every list that grows uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Generic, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from resolvers.pagination import Page


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


def selected_names(selections: Iterable[Selection], path: tuple[str, ...] = ()) -> Iterator[str]:
    """The names of the fields selected at `path` below `selections`, through fragments
    (a fragment's fields count as its parent's own)."""
    for selection in selections:
        if not isinstance(selection, SelectedField):
            yield from selected_names(selection.selections, path)
        elif not path:
            yield selection.name
        elif selection.name == path[0]:
            yield from selected_names(selection.selections, path[1:])


def asks_total_count(info: strawberry.Info) -> bool:
    """Whether the connection field being resolved selects totalCount (through fragments too)."""
    return any("totalCount" in selected_names(field.selections) for field in info.selected_fields)


@strawberry.type(description="One item of a page with the cursor to continue from it.")
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="A page of a list, newest first; page with first/after or last/before.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    nodes: list[NodeT]
    page_info: PageInfo
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
        return cls(
            edges=[Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
            nodes=nodes,
            page_info=PageInfo.of(page),  # type: ignore[arg-type]
            count=count,
        )
