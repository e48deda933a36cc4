"""Fixtures: every database test runs on SQLite and on a real PostgreSQL.

The PostgreSQL cluster is started once per session from the machine's
binaries (tests/pgcluster.py). Each backend is migrated once with Alembic
(never create_all); each test starts from empty tables.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from app import create_app
from cli import migrate
from database import Database
from engines import create_engine
from models import Organization
from permissions.keys import issue_key
from permissions.matrix import Role
from resolvers.organizations import create_organization
from settings import Settings
from tests.factories import empty_tables
from tests.pgcluster import running_postgres

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with running_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="personagraph-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def settings(backend: str, request: pytest.FixtureRequest) -> Settings:
    if backend == "sqlite":
        folder: Path = request.getfixturevalue("sqlite_dir")
        url = f"sqlite+aiosqlite:///{folder / 'test.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    settings = Settings(database_url=url, persona_number_block=5, cost_bucket_size=1_000_000_000)
    migrate(settings)
    return settings


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0
        self.active = False

    def __call__(self, *_: Any) -> None:
        if self.active:
            self.count += 1


@pytest.fixture(scope="session")
async def session_db(settings: Settings) -> AsyncIterator[Database]:
    db = Database(create_engine(settings))
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
def statements(session_db: Database) -> StatementCounter:
    counter = StatementCounter()
    event.listen(session_db.engine.sync_engine, "before_cursor_execute", counter)
    return counter


@pytest.fixture
async def db(session_db: Database, statements: StatementCounter) -> Database:
    """The database with every table empty."""
    await empty_tables(session_db)
    statements.active = False
    statements.count = 0
    return session_db


@pytest.fixture
async def org(db: Database) -> Organization:
    async with db.session() as session, session.begin():
        return await create_organization(session, slug="acme", name="Acme Cannabis Co.")


@pytest.fixture
async def other_org(db: Database) -> Organization:
    async with db.session() as session, session.begin():
        return await create_organization(session, slug="rival", name="Rival Dispensary")


@dataclass
class GraphQLClient:
    """Sends real GraphQL documents over HTTP through the ASGI app."""

    http: httpx.AsyncClient
    role: Role | None

    async def post(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, **kwargs)

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON body of a 200 answer."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The data of an answer that must carry no error."""
        body = await self.execute(query, variables)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data


ClientFactory = Callable[..., Awaitable[GraphQLClient]]


@pytest.fixture
async def client_for(db: Database, settings: Settings, org: Organization) -> AsyncIterator[ClientFactory]:
    app = create_app(settings, database=db)
    opened: list[httpx.AsyncClient] = []

    async def make(role: Role | None = Role.OWNER, organization: Organization | None = None) -> GraphQLClient:
        headers = {}
        if role is not None:
            async with db.session() as session, session.begin():
                issued = await issue_key(session, org_id=(organization or org).id, role=role, name=f"test {role}")
            headers["Authorization"] = f"Bearer {issued.plaintext}"
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers)
        opened.append(http)
        return GraphQLClient(http=http, role=role)

    yield make
    for http in opened:
        await http.aclose()


@pytest.fixture
async def owner_client(client_for: ClientFactory) -> GraphQLClient:
    return await client_for(Role.OWNER)


@pytest.fixture
async def manager_client(client_for: ClientFactory) -> GraphQLClient:
    return await client_for(Role.MANAGER)


@pytest.fixture
async def staff_client(client_for: ClientFactory) -> GraphQLClient:
    return await client_for(Role.STAFF)


@pytest.fixture
async def analyst_client(client_for: ClientFactory) -> GraphQLClient:
    return await client_for(Role.ANALYST)


@pytest.fixture
async def operator_client(client_for: ClientFactory) -> GraphQLClient:
    return await client_for(Role.OPERATOR)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PERSONAGRAPH_ENV", "test")
