"""Reading personas: lookups by id and number, and the Personas page."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Persona
from resolvers.pagination import Cursor, Page, PageRequest, build_page, keyset_select

PERSONAS = Persona.__table__  # type: ignore[attr-defined]


def listed_personas(org_id: uuid.UUID, *, include_archived: bool) -> Any:
    """The Personas page's WHERE: this org, with PII, not merged away or erased."""
    conditions = [
        PERSONAS.c.org_id == org_id,
        PERSONAS.c.merged_into_id.is_(None),
        PERSONAS.c.erased_at.is_(None),
    ]
    if not include_archived:
        conditions.append(PERSONAS.c.archived_at.is_(None))
    return conditions


async def personas_page(
    conn: AsyncConnection, org_id: uuid.UUID, request: PageRequest, *, include_archived: bool = False
) -> Page[Row[Any]]:
    base = select(PERSONAS).where(*listed_personas(org_id, include_archived=include_archived))
    stmt = keyset_select(base, PERSONAS.c.created_at, PERSONAS.c.id, request)
    rows = (await conn.execute(stmt)).all()
    return build_page(rows, request, lambda r: Cursor(r.created_at, r.id))


async def personas_count(conn: AsyncConnection, org_id: uuid.UUID, *, include_archived: bool = False) -> int:
    stmt = select(func.count()).select_from(PERSONAS).where(*listed_personas(org_id, include_archived=include_archived))
    return int((await conn.execute(stmt)).scalar_one())
