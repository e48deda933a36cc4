"""Helpers for the hardening tests (limits, cost, HTTP rules, probes, faults).

- `World`: a fresh organization with a key per role and an httpx client on the
  ASGI app, made without emptying the database (cheap: these tests only read
  what they create, under an organization of their own).
- `new_org`, `key_for`: an organization of the test's own and a key for it.

The live server (a real uvicorn) is tests/live_server.py.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette

from app import create_app
from database import Database
from models import Organization
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.organizations import create_organization
from settings import Settings
from tests.live_server import live_server

# live_server is listed for test_soak.py, which still imports it from here; new code imports tests.live_server.
__all__ = ["World", "key_for", "live_server", "new_org", "world"]


async def new_org(db: Database) -> Organization:
    async with db.session() as session, session.begin():
        return await create_organization(session, slug=f"h-{uuid.uuid4().hex[:12]}", name="Hardening Co.")


async def key_for(db: Database, org: Organization, role: Role = Role.OWNER) -> str:
    async with db.session() as session, session.begin():
        issued = await issue_key(session, org_id=org.id, role=role, name=f"hardening {role}")
    return issued.plaintext


@dataclass
class World:
    org: Organization
    app: Starlette
    keys: dict[Role, str] = field(default_factory=dict)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, role: Role | None = Role.OWNER, /, **headers: str) -> httpx.AsyncClient:
        """A client on the ASGI app with `role`'s key (none when role is None) and extra headers."""
        if role is not None:
            headers = {"Authorization": f"Bearer {self.keys[role]}", **headers}
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test", headers=headers)
        self.clients.append(http)
        return http


@contextlib.asynccontextmanager
async def world(db: Database, settings: Settings, roles: tuple[Role, ...] = (Role.OWNER,)) -> AsyncIterator[World]:
    org = await new_org(db)
    made = World(org=org, app=create_app(settings, database=db))
    for role in roles:
        made.keys[role] = await key_for(db, org, role)
    try:
        yield made
    finally:
        for http in made.clients:
            await http.aclose()
