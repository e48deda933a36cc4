"""Helpers for the hardening tests (limits, cost, HTTP rules, probes, faults).

- `World`: a fresh organization with a key per role and an httpx client on the
  ASGI app, made without emptying the database (cheap: these tests only read
  what they create, under an organization of their own).
- `live_server`: the app in a real uvicorn in a thread on a free loopback port;
  it builds its own engine in its own event loop, so tests set data up through
  the `db`/`session_db` fixtures and talk to it over HTTP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from app import create_app
from database import Database
from models import Organization
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.organizations import create_organization
from settings import Settings


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Live:
    url: str
    app: Starlette

    @property
    def graphql(self) -> str:
        return f"{self.url}/graphql"


@contextlib.contextmanager
def live_server(settings: Settings, **overrides: Any) -> Iterator[Live]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(dataclasses.replace(settings, public_base_url=url, **overrides))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Live(url, app)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
