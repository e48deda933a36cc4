"""Persisted queries, Apollo's protocol: a client sends
`extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}` instead of
the document, so the staff app sends a few bytes and the same GET is cacheable.

The registered documents are the repository's operations/*.graphql, read at
start-up. Each is registered under the SHA-256 of its text and of its
canonical print (what Apollo Client hashes by default), so both spellings of
a client's hash are known. Nothing is registered at run time: the registry is
exactly what the repository reviewed.

`PERSISTED_ONLY_ROLES` lets production accept, for keys of those roles, only
registered documents (sent by hash, or as the exact registered text).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import GraphQLError, parse, print_ast

from schema.errors import BAD_USER_INPUT, FORBIDDEN

logger = logging.getLogger("personagraph.persisted")

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
# Apollo clients match this exact message (older ones) or the code to resend the full document.
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PersistedQueries:
    documents: Mapping[str, str]  # sha256 hex -> document text
    names: Mapping[str, str]  # sha256 hex -> file stem, for the logs

    @classmethod
    def load(cls, folder: Path) -> PersistedQueries:
        documents: dict[str, str] = {}
        names: dict[str, str] = {}
        for path in sorted(folder.glob("*.graphql")):
            text = path.read_text(encoding="utf-8")
            for digest in {sha256(text), sha256(print_ast(parse(text)))}:
                documents[digest] = text
                names[digest] = path.stem
        logger.info("registered %d persisted documents from %s", len(set(names.values())), folder)
        return cls(documents=documents, names=names)

    def is_registered(self, query: str) -> bool:
        return sha256(query) in self.documents


class PersistedQueryError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, extensions={"code": code})
        self.code = code


def resolve_document(
    query: str | None,
    extensions: Mapping[str, Any] | None,
    registry: PersistedQueries,
    *,
    registered_only: bool,
) -> str | None:
    """The document to run: the one sent, or the registered one its hash names.

    Raises PersistedQueryError for an unknown hash (PERSISTED_QUERY_NOT_FOUND), a
    hash that does not match the document sent, or (when `registered_only`) a
    document that is not registered. None when there is neither a query nor a hash.
    """
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        if registered_only and query is not None and not registry.is_registered(query):
            raise PersistedQueryError(
                "This API key may only run registered operations: send extensions.persistedQuery.sha256Hash.",
                FORBIDDEN,
            )
        return query
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise PersistedQueryError("Unsupported persistedQuery: send {version: 1, sha256Hash: <hex>}.", BAD_USER_INPUT)
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str):
        raise PersistedQueryError("persistedQuery.sha256Hash must be a hex string.", BAD_USER_INPUT)
    digest = digest.lower()
    if query is not None:
        if sha256(query) != digest:
            raise PersistedQueryError("provided sha does not match query", BAD_USER_INPUT)
        if registered_only and digest not in registry.documents:
            raise PersistedQueryError("This API key may only run registered operations.", FORBIDDEN)
        return query
    registered = registry.documents.get(digest)
    if registered is None:
        raise PersistedQueryError(NOT_FOUND_MESSAGE, PERSISTED_QUERY_NOT_FOUND)
    return registered
