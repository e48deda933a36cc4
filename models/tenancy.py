"""Helpers that keep every tenant table on the storage rules.

org_id comes first in each primary key, unique constraint and foreign key
between tenant tables: that is the security boundary, and what lets Citus
distribute the tables by org_id with no change to the application.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKeyConstraint
from sqlmodel import Field


def org_id_field() -> uuid.UUID:
    return Field(primary_key=True, foreign_key="organizations.id")  # type: ignore[no-any-return]


def implied_org_id_field() -> uuid.UUID:
    """org_id of a table whose rows belong to a persona (or an order, an entry) by a tenant_fk on a
    NOT NULL column: that key already holds org_id to an existing row of the organization, so a
    foreign key of org_id alone to organizations would only be checked again on every insert
    (migration 0004 dropped those on PostgreSQL)."""
    return Field(primary_key=True)  # type: ignore[no-any-return]


def tenant_fk(columns: str | list[str], table: str, *, ondelete: str | None = None) -> ForeignKeyConstraint:
    """A foreign key on (org_id, *columns) to (org_id, id) of another tenant table."""
    local = [columns] if isinstance(columns, str) else columns
    remote = ["id"] if len(local) == 1 else local
    return ForeignKeyConstraint(
        ["org_id", *local],
        [f"{table}.org_id", *(f"{table}.{c}" for c in remote)],
        ondelete=ondelete,
    )
