"""Custom attributes (key/value, unlimited) and tags on a persona."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import CustomAttribute, PersonaTag
from models.base import utcnow
from models.enums import AttributeSource


async def set_attributes(
    session: AsyncSession,
    org_id: uuid.UUID,
    persona_id: uuid.UUID,
    pairs: Sequence[tuple[str, str]],
    source: AttributeSource,
) -> None:
    now = utcnow()
    for key, value in pairs:
        existing = await session.get(CustomAttribute, (org_id, persona_id, key))
        if existing is None:
            session.add(
                CustomAttribute(
                    org_id=org_id, persona_id=persona_id, key=key, value=value, source=source, updated_at=now
                )
            )
        elif existing.value != value:
            existing.value, existing.source, existing.updated_at = value, source.value, now
    await session.flush()


async def remove_attributes(
    session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID, keys: Iterable[str]
) -> None:
    await session.execute(
        delete(CustomAttribute).where(
            col(CustomAttribute.org_id) == org_id,
            col(CustomAttribute.persona_id) == persona_id,
            col(CustomAttribute.key).in_(list(keys)),
        )
    )


async def add_tags(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID, tags: Iterable[str]) -> None:
    wanted = {t.strip() for t in tags if t.strip()}
    held = set(
        (
            await session.execute(
                select(col(PersonaTag.tag)).where(
                    col(PersonaTag.org_id) == org_id, col(PersonaTag.persona_id) == persona_id
                )
            )
        ).scalars()
    )
    for tag in sorted(wanted - held):
        session.add(PersonaTag(org_id=org_id, persona_id=persona_id, tag=tag))
    await session.flush()


async def remove_tags(session: AsyncSession, org_id: uuid.UUID, persona_id: uuid.UUID, tags: Iterable[str]) -> None:
    await session.execute(
        delete(PersonaTag).where(
            col(PersonaTag.org_id) == org_id,
            col(PersonaTag.persona_id) == persona_id,
            col(PersonaTag.tag).in_(list(tags)),
        )
    )
