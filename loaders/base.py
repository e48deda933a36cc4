"""The DataLoader shape every loader here follows.

A loader is made per request for one organization. Its batch function reads one
statement scoped to the organization in SQL through `db.select` (a request's reads
issued in the same tick go to PostgreSQL as one statement: database.RequestDatabase)
and returns exactly one result per key, in key order.

Most loaders are declarative: `statement` (built once at import, bound with
`params(keys)`) and `shape`, how its rows become one result per key (`OnePerKey`,
`GroupedBy`). A loader that needs several statements or more logic
overrides `fetch` and reads through `self.db.select` too.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import BindParameter, ColumnElement, bindparam

from coalesce import RowLike, Statement
from database import Database
from models.base import one_of

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def org_param() -> BindParameter[object]:
    """The organization of a statement built once at import (bound as {"org_id": ...})."""
    return bindparam("org_id")


def keys_in(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """`column` is one of the batch's keys, in a statement built once at import (bound as
    {"keys": [...]}; one array parameter on PostgreSQL: models.base.OneOf).

    A loader's statement is the same for every batch: built once, SQLAlchemy finds its
    compiled form by the statement's cached key instead of building and hashing a new
    statement per batch (a third of a batch's cost for the one-row batches of a card)."""
    return one_of(column, "keys")


def one_per_key(rows: Iterable[Any], keys: Sequence[Hashable], attribute: str = "id") -> list[Any]:
    """The row whose `attribute` is each key (None where none is), in key order."""
    found = {getattr(row, attribute): row for row in rows}
    return [found.get(key) for key in keys]


class Shape(Protocol):
    """How a statement's rows become one result per key, in key order."""

    def __call__(self, rows: Sequence[RowLike], keys: Sequence[Any], /) -> list[Any]: ...


@dataclass(frozen=True)
class OnePerKey:
    """The row whose `column` is each key, None where none is."""

    column: str = "id"

    def __call__(self, rows: Sequence[RowLike], keys: Sequence[Any], /) -> list[Any]:
        return one_per_key(rows, keys, self.column)


@dataclass(frozen=True)
class GroupedBy:
    """The rows whose `column` is each key, in the statement's order (only their `pick`
    column when given); an empty list where there are none."""

    column: str
    pick: str | None = None

    def __call__(self, rows: Sequence[RowLike], keys: Sequence[Any], /) -> list[Any]:
        groups: dict[Any, list[Any]] = defaultdict(list)
        for row in rows:
            groups[getattr(row, self.column)].append(row if self.pick is None else getattr(row, self.pick))
        return [groups.get(key, []) for key in keys]


class OrgLoader(DataLoader[K, V], Generic[K, V]):
    statement: ClassVar[Statement | None] = None
    shape: ClassVar[Shape | None] = None

    def __init__(self, db: Database, org_id: uuid.UUID) -> None:
        super().__init__()
        self.db = db
        self.org_id = org_id

    async def batch_load_fn(self, keys: Sequence[K]) -> list[V]:
        return await self.fetch(list(keys))

    async def fetch(self, keys: list[K]) -> list[V]:
        """The declarative form: `statement` bound with `params(keys)`, its rows shaped by `shape`."""
        if self.statement is None or self.shape is None:
            raise NotImplementedError(f"{type(self).__name__} sets statement and shape or overrides fetch")
        return self.shape(await self.db.select(self.statement, self.params(keys)), keys)

    def params(self, keys: list[K]) -> dict[str, object]:
        """The values of org_param() and keys_in()."""
        return {"org_id": self.org_id, "keys": keys}
