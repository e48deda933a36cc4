"""Values worked out once per parsed document: its shapes for the limits, its
validation errors, its pricing plan for the cost."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from graphql import DocumentNode, GraphQLSchema

T = TypeVar("T")

DOCUMENTS_KEPT = 256


class PerDocument(Generic[T]):
    """`work(schema, document, extra)` once per (schema, document, extra), for the most
    recently used documents (`extra`: what else the value depends on, e.g. validation rules).

    Keyed by the document's identity: strawberry's parser cache hands the same document
    object to every request with the same text, while hashing a document (what an
    `lru_cache` over it does) walks its whole syntax tree, every request: ~3% of the card's
    CPU did that for validation alone. An entry holds its document, so the id stays its own."""

    def __init__(self, work: Callable[[GraphQLSchema, DocumentNode, Any], T], size: int = DOCUMENTS_KEPT) -> None:
        self.work = work
        self.size = size
        self.found: OrderedDict[int, tuple[GraphQLSchema, DocumentNode, Hashable, T]] = OrderedDict()

    def __call__(self, schema: GraphQLSchema, document: DocumentNode, extra: Hashable = None) -> T:
        key = id(document)
        entry = self.found.get(key)
        if entry is not None and entry[1] is document and entry[0] is schema and entry[2] == extra:
            self.found.move_to_end(key)
            return entry[3]
        value = self.work(schema, document, extra)
        self.found[key] = (schema, document, extra, value)
        if len(self.found) > self.size:
            self.found.popitem(last=False)
        return value


__all__ = ["PerDocument"]
