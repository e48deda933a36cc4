"""What a search bar query is once parsed (resolvers/search.py): its terms, to be
ANDed, and the bare name words that rank the results. resolvers/search_terms.py
and resolvers/search_sql.py turn them into SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class NameWords:
    """Every word must appear somewhere in the name (case-insensitive)."""

    words: tuple[str, ...]


@dataclass(frozen=True)
class ExactName:
    """Lower-cased, with single spaces between the words."""

    name: str


@dataclass(frozen=True)
class Email:
    email: str


@dataclass(frozen=True)
class Phone:
    raw: str
    offset: int


@dataclass(frozen=True)
class Flag:
    """has:mobile_phone, has:email, is:loyalty_member or is:archived."""

    name: str


@dataclass(frozen=True)
class ConsentIs:
    channel: str
    status: str


@dataclass(frozen=True)
class SourceIs:
    kind: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class TagIs:
    tag: str


@dataclass(frozen=True)
class AttributeIs:
    key: str
    value: str


@dataclass(frozen=True)
class StoreIs:
    name: str


@dataclass(frozen=True)
class Comparison:
    """`value` is an int for points/orders/last_seen, cents for spent, a date for signed_up."""

    field: str
    operator: str
    value: int | dt.date


Term = ExactName | Email | Phone | Flag | ConsentIs | SourceIs | TagIs | AttributeIs | StoreIs | Comparison


@dataclass(frozen=True)
class SearchQuery:
    """A parsed query: the terms to AND, and the bare name words apart (they rank results)."""

    terms: tuple[Term, ...] = ()
    name_words: tuple[str, ...] = ()

    @property
    def archived(self) -> bool:
        """is:archived asks for archived personas, so they are not hidden."""
        return Flag("archived") in self.terms

    @property
    def has_phone(self) -> bool:
        return any(isinstance(t, Phone) for t in self.terms)

    @property
    def is_empty(self) -> bool:
        return not self.terms and not self.name_words
