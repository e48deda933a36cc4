"""The floor: each read operation answered by one hand-written SQL statement
that builds the whole JSON response in PostgreSQL, behind a bare Starlette
endpoint on the same HTTP stack as the app (uvicorn, one process).

    POST /floor/{operation}   body: {"variables": {...}} as the GraphQL request has them

Operations: card, header, general, points, discounts, history (the History
tab) and personas (the Personas page; `query` searches). No authentication,
no parsing beyond the JSON body, no GraphQL: what is left is the HTTP
round trip, one pooled psycopg connection and the database's own work.

The harness starts it with `uvicorn bench.floor:app` and these variables:
BENCH_FLOOR_DATABASE_URL (libpq URL) and BENCH_FLOOR_ORG_ID.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bench.floor_lists import HISTORY_TAB, personas_statement, search_conditions
from bench.floor_sql import HELPERS, STATEMENTS
from schema.ids import parse_global_id

# The page sizes the operations' documents use.
CARD_HISTORY_FIRST = 10
TAB_FIRST = 20


def install_helpers(url: str) -> None:
    """Create the bench_floor schema's functions (idempotent)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(HELPERS)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ["BENCH_FLOOR_DATABASE_URL"]
    app.state.org = uuid.UUID(os.environ["BENCH_FLOOR_ORG_ID"])
    async with AsyncConnectionPool(url, min_size=2, max_size=10, open=False) as pool:
        app.state.pool = pool
        yield


async def _json(request: Request, statement: str, params: dict[str, Any]) -> Response:
    pool: AsyncConnectionPool = request.app.state.pool
    async with pool.connection() as conn:
        row = await (await conn.execute(statement, params)).fetchone()
    assert row is not None
    return Response(row[0], media_type="application/json")


async def persona_operation(request: Request) -> Response:
    operation = request.path_params["operation"]
    variables = orjson.loads(await request.body()).get("variables") or {}
    _, persona_id = parse_global_id(variables["id"])
    if operation == "history":
        statement, first = HISTORY_TAB, TAB_FIRST
    elif operation in STATEMENTS:
        statement, first = STATEMENTS[operation], int(variables.get("historyFirst") or CARD_HISTORY_FIRST)
    else:
        return PlainTextResponse("unknown operation", status_code=404)
    return await _json(request, statement, {"org": request.app.state.org, "id": persona_id, "first": first})


async def personas(request: Request) -> Response:
    variables = orjson.loads(await request.body()).get("variables") or {}
    where, rank, params = search_conditions(variables.get("query"))
    params.update(org=request.app.state.org, first=int(variables.get("first") or 20))
    return await _json(request, personas_statement(where, rank), params)


app = Starlette(
    routes=[
        Route("/floor/personas", personas, methods=["POST"]),
        Route("/floor/{operation}", persona_operation, methods=["POST"]),
    ],
    lifespan=lifespan,
)
