"""Loaders for personas and their organization.

Loaders hand back rows (SQLAlchemy Rows, or CoalescedRows of the same keys:
attribute access, no ORM identity map or validation on the hot path); schema
types read the same attribute names from a row as from a table model.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from coalesce import RowLike
from loaders.base import OnePerKey, OrgLoader, keys_in, org_param
from models.tables import ORGANIZATIONS, PERSONAS

PERSONAS_BY_ID = select(PERSONAS).where(PERSONAS.c.org_id == org_param(), keys_in(PERSONAS.c.id))
PERSONAS_BY_NUMBER = select(PERSONAS).where(PERSONAS.c.org_id == org_param(), keys_in(PERSONAS.c.number))
# A viewer only ever sees its own organization.
ORGANIZATION = select(ORGANIZATIONS).where(ORGANIZATIONS.c.id == org_param())


class PersonaByIdLoader(OrgLoader[uuid.UUID, RowLike | None]):
    statement = PERSONAS_BY_ID
    shape = OnePerKey()


class PersonaByNumberLoader(OrgLoader[int, RowLike | None]):
    statement = PERSONAS_BY_NUMBER
    shape = OnePerKey("number")


class OrganizationLoader(OrgLoader[uuid.UUID, RowLike | None]):
    statement = ORGANIZATION
    shape = OnePerKey()

    def params(self, keys: list[uuid.UUID]) -> dict[str, object]:
        return {"org_id": self.org_id}
