"""Assembles the Starlette app: /graphql (+ GraphiQL), /healthz, /readyz and
the other routes. No logic lives here: it wires settings, the database, the
schema and authentication together."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from database import Database, RequestDatabase, read_once_more_if_stale
from engines import create_engine
from loaders import Loaders
from permissions.keys import Authenticated, KeyCache, authenticate, touch_key
from permissions.viewer import Viewer
from resolvers.export_sql import prepare_statements
from resolvers.notifier import LogNotifier, Notifier
from routes import engagement, export, graphql_http, imports, signup
from routes import privacy as privacy_page
from routes.http_guards import BodyLimit, SecurityHeaders, graphiql_policy
from schema import schema as default_schema
from schema.context import Context
from schema.cost import CostBuckets
from schema.errors import UNAUTHENTICATED
from schema.persisted import PersistedQueries
from settings import ROOT, Settings, get_settings, production_problems

logger = logging.getLogger("personagraph.http")
# Net allocations of container objects that start a collection of the youngest generation.
YOUNGEST_GC_THRESHOLD = 5_000


class PersonaGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view, with the context built from the authenticated viewer."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(default_schema, graphql_ide="graphiql" if settings.graphiql else None, **kwargs)
        self.settings = settings
        self.keys = KeyCache(settings.api_key_cache_seconds)

    async def get_context(self, request: Any, response: Any) -> Context:
        viewer: Viewer = request.state.viewer
        db: Database = getattr(request.state, "db", None) or request.app.state.db
        loaders = Loaders(db, viewer.org_id)
        organization = getattr(request.state, "organization", None)
        if organization is not None:  # read with the key (permissions/keys.py)
            loaders.organization.prime(viewer.org_id, organization)
        return Context(request=request, viewer=viewer, db=db, loaders=loaders, settings=self.settings)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def _unauthenticated(message: str) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": UNAUTHENTICATED}}]}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="personagraph"'})


def _wants_graphiql(request: Request) -> bool:
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


async def graphql_endpoint(request: Request) -> Response:
    view: PersonaGraphQL = request.app.state.graphql
    if _wants_graphiql(request):
        if view.graphql_ide:
            return graphiql_policy(await view.render_graphql_ide(request))
        return PlainTextResponse("Not Found", status_code=404)
    # One time limit for the whole request, authentication included.
    limit = view.settings.request_timeout_seconds
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            return await _authenticated_graphql(request, view)
    except TimeoutError:
        if not deadline.expired():
            raise
    return graphql_http.masked_failure(503, None, message=f"The request took longer than {limit:g} s and was stopped.")


async def _authenticated_graphql(request: Request, view: PersonaGraphQL) -> Response:
    scheme, _, raw_key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw_key.strip():
        return _unauthenticated("Send an API key: 'Authorization: Bearer <key>'.")
    db: Database = request.app.state.db
    # The request's reads, authentication included, share one connection (database.py).
    request.state.db = reads = db.for_request()
    try:
        try:
            found = await view.keys.authenticate(raw_key.strip(), partial(_read_key, reads))
        except Exception as exc:  # the database is unreachable: masked, and the log says what
            return graphql_http.masked_failure(503, exc)
        if found is None:
            return _unauthenticated("The API key is unknown, malformed or revoked.")
        request.state.viewer = found.viewer
        request.state.organization = found.organization
        response = await graphql_http.serve(request, view)
    finally:
        await reads.close()
    if found.needs_touch:
        response.background = BackgroundTask(_touch, db, found.viewer)
    return response


async def _read_key(reads: RequestDatabase, raw_key: str) -> Authenticated | None:
    return await read_once_more_if_stale(reads.read, partial(authenticate, raw_key=raw_key))


async def _touch(db: Database, viewer: Viewer) -> None:
    async with db.sessions() as session, session.begin():
        await touch_key(session, viewer)


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    db: Database = request.app.state.db
    try:
        await read_once_more_if_stale(db.read, lambda conn: conn.execute(text("SELECT 1")))
    except Exception as exc:  # any failure to reach the database means not ready
        logger.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


class RequestLog:
    """Logs method, path (never the query string), status and duration: no PII."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            logger.info("%s %s %s %.1fms", scope["method"], scope["path"], status, elapsed)


def create_app(
    settings: Settings | None = None, database: Database | None = None, notifier: Notifier | None = None
) -> Starlette:
    settings = settings or get_settings()
    if problems := production_problems(settings):
        raise RuntimeError("; ".join(problems))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = database is None
        app.state.db = database or Database(
            create_engine(settings),
            reads_per_request=settings.db_reads_per_request,
            coalesce_reads=settings.coalesce_reads,
        )
        # The CSV export's COPY statements, compiled once here rather than by the first exports (~70 ms).
        prepare_statements(app.state.db.engine.dialect)
        # What start-up made (the schema, the app, the modules: ~190k objects) lives as long as the
        # process: frozen, the full collections that a request's garbage triggers stop walking it
        # (130-370 ms each at load, one every second ingest batch; bench/README.md "Ingestion").
        gc.collect()
        gc.freeze()
        # A card holds a few thousand objects while it is answered: at the default 700 net
        # allocations the youngest generation was collected ~once a card (0.4 ms each card, all
        # told); from 5,000 on, a few times a thousand cards. Cycles wait a little longer.
        gc.set_threshold(YOUNGEST_GC_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            if owned:
                await app.state.db.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *engagement.routes,
            *export.routes,
            *privacy_page.routes,
            *imports.routes,
            *signup.routes,
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.graphql = PersonaGraphQL(settings)
    app.state.cost_buckets = CostBuckets(settings.cost_bucket_size, settings.cost_restore_rate)
    app.state.persisted_queries = PersistedQueries.load(ROOT / "operations")
    # Where codes and links to customers go; the log stand-in shows codes only outside production.
    app.state.notifier = notifier or LogNotifier(reveal=not settings.is_production)
    if database is not None:
        app.state.db = database
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestLog)
    return app
