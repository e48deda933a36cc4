"""Relay-style keyset pagination over (time, id), newest first.

Cursors are opaque (base64 of the row's time and id), so a page walk neither
skips nor repeats rows when new rows arrive between pages.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from sqlalchemy import ColumnElement, Select, and_, literal, or_

from models.base import UTCDateTime
from resolvers.errors import BadUserInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

T = TypeVar("T")
C = TypeVar("C")

# What a page's nodes select, as plain data: (response key, field name, the field's own
# selection or None for a leaf), fragments already applied. For a page whose nodes the
# database builds in their response form (resolvers/history_json.py).
Selection = tuple[tuple[str, str, "Selection | None"], ...]


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(value: str, parse: Callable[[list[str]], C]) -> C:
    """`parse` the parts of an encoded cursor; one it cannot read (a ValueError) is BAD_USER_INPUT."""
    try:
        padded = value + "=" * (-len(value) % 4)
        return parse(base64.urlsafe_b64decode(padded.encode()).decode().split("|"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadUserInput(f"Malformed cursor {value[:40]!r}: pass back a cursor this API returned.") from None


def aware_time(text: str) -> dt.datetime:
    time = dt.datetime.fromisoformat(text)
    if time.tzinfo is None:
        raise ValueError("naive time")
    return time


class KeysetCursor(Protocol):
    """Where a page ends: its last row's time and id (a search cursor adds the relevance)."""

    @property
    def time(self) -> dt.datetime: ...

    @property
    def id(self) -> uuid.UUID: ...

    def encode(self) -> str: ...


class KeysetRequest(Protocol):
    """Page arguments: PageRequest, or a search's, whose cursor carries the relevance too."""

    @property
    def size(self) -> int: ...

    @property
    def forward(self) -> bool: ...

    @property
    def cursor(self) -> KeysetCursor | None: ...


@dataclass(frozen=True)
class Cursor:
    time: dt.datetime
    id: uuid.UUID

    def encode(self) -> str:
        return encode_cursor(self.time.isoformat(), self.id.hex)

    @classmethod
    def decode(cls, value: str) -> Cursor:
        def parse(parts: list[str]) -> Cursor:
            time_part, id_part = parts
            return cls(time=aware_time(time_part), id=uuid.UUID(hex=id_part))

        return decode_cursor(value, parse)


@dataclass(frozen=True)
class PageRequest:
    """Validated page arguments: exactly one of forward (first/after) or backward."""

    size: int
    forward: bool
    cursor: Cursor | None

    @classmethod
    def from_args(
        cls,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> PageRequest:
        if first is not None and last is not None:
            raise BadUserInput("Pass either first or last, not both.")
        if after is not None and before is not None:
            raise BadUserInput("Pass either after or before, not both.")
        size = first if first is not None else last
        if size is None:
            size = DEFAULT_PAGE_SIZE
        if size < 0 or size > MAX_PAGE_SIZE:
            raise BadUserInput(f"A page holds 0 to {MAX_PAGE_SIZE} items; {size} was asked for.")
        forward = last is None and before is None
        raw = after if forward else before
        return cls(size=size, forward=forward, cursor=Cursor.decode(raw) if raw is not None else None)


class LazyCursors(Sequence[str]):
    """A page's cursors, each encoded when first read: a card reads its pages for their nodes,
    so only pageInfo's two ends (and the edges, where a query selects them) need theirs."""

    __slots__ = ("_encoded", "_items", "_key")

    def __init__(self, items: Sequence[T], key: Callable[[T], KeysetCursor]) -> None:
        self._items: Sequence[Any] = items
        self._key: Callable[[Any], KeysetCursor] = key
        self._encoded: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._items)))]
        position = index + len(self._items) if index < 0 else index
        found = self._encoded.get(position)
        if found is None:
            found = self._encoded[position] = self._key(self._items[position]).encode()
        return found


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: Sequence[str]
    has_next_page: bool
    has_previous_page: bool

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def after_cursor(time_col: Any, id_col: Any, cursor: KeysetCursor, forward: bool) -> ColumnElement[bool]:
    """Rows strictly after the cursor in newest-first order (or before it, going back)."""
    t = literal(cursor.time, UTCDateTime())
    i = literal(cursor.id)
    if forward:
        return or_(time_col < t, and_(time_col == t, id_col < i))
    return or_(time_col > t, and_(time_col == t, id_col > i))


def keyset_select(stmt: Select[Any], time_col: Any, id_col: Any, request: PageRequest) -> Select[Any]:
    """The statement for one page: the cursor condition, the order and one row more than asked."""
    if request.cursor is not None:
        stmt = stmt.where(after_cursor(time_col, id_col, request.cursor, request.forward))
    if request.forward:
        stmt = stmt.order_by(time_col.desc(), id_col.desc())
    else:
        stmt = stmt.order_by(time_col.asc(), id_col.asc())
    return stmt.limit(request.size + 1)


def build_page(rows: Sequence[T], request: KeysetRequest, key: Callable[[T], KeysetCursor]) -> Page[T]:
    """Turn the rows of keyset_select into a newest-first page."""
    has_more = len(rows) > request.size
    items = list(rows[: request.size])
    if not request.forward:
        items.reverse()
    cursors = LazyCursors(items, key)
    if request.forward:
        return Page(items, cursors, has_next_page=has_more, has_previous_page=request.cursor is not None)
    return Page(items, cursors, has_next_page=request.cursor is not None, has_previous_page=has_more)
