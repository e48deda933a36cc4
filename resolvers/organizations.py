"""Organizations: creating one with its default audience, finding one by slug."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Audience, Organization
from resolvers.errors import BadUserInput

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


async def create_organization(session: AsyncSession, *, slug: str, name: str) -> Organization:
    if not SLUG.match(slug):
        raise BadUserInput(f"slug {slug!r} must be 2-63 lower-case letters, digits or dashes")
    if not name.strip():
        raise BadUserInput("name may not be empty")
    if await organization_by_slug(session, slug) is not None:
        raise BadUserInput(f"an organization with slug {slug!r} exists already")
    org = Organization(slug=slug, name=name.strip())
    session.add(org)
    await session.flush()
    session.add(Audience(org_id=org.id, name="ALL", query="", is_default=True))
    await session.flush()
    return org


async def organization_by_slug(session: AsyncSession, slug: str) -> Organization | None:
    result = await session.execute(select(Organization).where(col(Organization.slug) == slug))
    return result.scalars().first()
