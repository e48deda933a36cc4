"""Loaders for personas and their organization.

Loaders hand back SQLAlchemy rows (attribute access, no ORM identity map or
validation on the hot path); schema types read the same attribute names from
a row as from a table model.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loaders.base import OrgLoader, keys_param, one_per_key, org_param
from models import Organization, Persona

PERSONAS = Persona.__table__  # type: ignore[attr-defined]
ORGANIZATIONS = Organization.__table__  # type: ignore[attr-defined]
PERSONAS_BY_ID = select(PERSONAS).where(PERSONAS.c.org_id == org_param(), PERSONAS.c.id.in_(keys_param()))
PERSONAS_BY_NUMBER = select(PERSONAS).where(PERSONAS.c.org_id == org_param(), PERSONAS.c.number.in_(keys_param()))
# A viewer only ever sees its own organization.
ORGANIZATION = select(ORGANIZATIONS).where(ORGANIZATIONS.c.id == org_param())


class PersonaByIdLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        return one_per_key(await conn.execute(PERSONAS_BY_ID, self.params(keys)), keys)


class PersonaByNumberLoader(OrgLoader[int, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[int]) -> list[Row[Any] | None]:
        return one_per_key(await conn.execute(PERSONAS_BY_NUMBER, self.params(keys)), keys, "number")


class OrganizationLoader(OrgLoader[uuid.UUID, Row[Any] | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        return one_per_key(await conn.execute(ORGANIZATION, {"org_id": self.org_id}), keys)
