"""CSV and signature exports over HTTP, with an API key and the EXPORT permission.

    GET /export/personas.csv?query=...&includeArchived=true   a search's personas
    GET /export/audiences/{id}.csv                           an audience's personas
    GET /export/signatures.zip?query=...                      sign-up signatures (also VIEW_TECHNICAL_TRAITS)

Answers stream as they are read (resolvers/export.py); the columns follow the
viewer's field permissions and are listed in the README ("CSV export").
Errors use the GraphQL error vocabulary: 401 UNAUTHENTICATED, 403 FORBIDDEN,
400 BAD_QUERY / BAD_USER_INPUT, 404 NOT_FOUND.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from database import Database
from permissions.keys import authenticate, touch_key
from permissions.matrix import Permission
from permissions.viewer import Viewer
from resolvers.audiences import audience_by_id, audience_search
from resolvers.errors import ApiError, NotFound
from resolvers.export import stream_csv
from resolvers.search_sql import CompiledSearch, compile_for_org
from resolvers.search_terms import Dialect
from resolvers.signatures_zip import stream_signatures_zip
from schema.ids import from_global_id

CSV_TYPE = "text/csv; charset=utf-8"
_Responder = Callable[[Request, Viewer], Awaitable[Response]]
TRUE = frozenset({"1", "true", "yes"})


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers=headers)


class Refused(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _viewer(request: Request, *needed: Permission) -> tuple[Viewer, BackgroundTask | None]:
    """The key's viewer, if it holds every permission needed."""
    scheme, _, raw_key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw_key.strip():
        challenge = {"WWW-Authenticate": 'Bearer realm="personagraph"'}
        raise Refused(_error(401, "UNAUTHENTICATED", "Send an API key: 'Authorization: Bearer <key>'.", challenge))
    db: Database = request.app.state.db
    async with db.read() as conn:
        found = await authenticate(conn, raw_key.strip())
    if found is None:
        raise Refused(_error(401, "UNAUTHENTICATED", "The API key is unknown, malformed or revoked."))
    viewer = found.viewer
    for permission in needed:
        if not viewer.can(permission):
            message = f"Your role may not do this: it needs the {permission.value} permission."
            raise Refused(_error(403, "FORBIDDEN", message))
    return viewer, BackgroundTask(_touch, db, viewer) if found.needs_touch else None


async def _touch(db: Database, viewer: Viewer) -> None:
    async with db.sessions() as session, session.begin():
        await touch_key(session, viewer)


async def _search(request: Request, viewer: Viewer) -> CompiledSearch:
    include_archived = request.query_params.get("includeArchived", "").lower() in TRUE
    db: Database = request.app.state.db
    async with db.read() as conn:
        return await compile_for_org(
            conn, viewer.org_id, request.query_params.get("query"), include_archived=include_archived
        )


def _filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "export"


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}


async def _answer(request: Request, needed: tuple[Permission, ...], respond: _Responder) -> Response:
    try:
        viewer, touch = await _viewer(request, *needed)
        response = await respond(request, viewer)
    except Refused as refused:
        return refused.response
    except NotFound as e:
        return _error(404, e.code, e.message)
    except ApiError as e:
        return _error(400, e.code, e.message)
    response.background = touch
    return response


async def _personas_csv(request: Request, viewer: Viewer) -> Response:
    search = await _search(request, viewer)
    db: Database = request.app.state.db
    body = stream_csv(db, search, viewer.permissions)
    return StreamingResponse(body, media_type=CSV_TYPE, headers=_attachment("personas.csv"))


async def _audience_csv(request: Request, viewer: Viewer) -> Response:
    audience_id = from_global_id(request.path_params["audience_id"], "Audience")
    db: Database = request.app.state.db
    async with db.read() as conn:
        row = await audience_by_id(conn, viewer.org_id, audience_id)
        if row is None:
            raise NotFound("No audience with that id.")
        search = audience_search(row, viewer.org_id, Dialect.of(conn), row.default_region)
    body = stream_csv(db, search, viewer.permissions)
    return StreamingResponse(body, media_type=CSV_TYPE, headers=_attachment(f"audience-{_filename(row.name)}.csv"))


async def _signatures_zip(request: Request, viewer: Viewer) -> Response:
    search = await _search(request, viewer)
    db: Database = request.app.state.db
    body = stream_signatures_zip(db, viewer.org_id, search)
    return StreamingResponse(body, media_type="application/zip", headers=_attachment("signatures.zip"))


async def personas_csv(request: Request) -> Response:
    return await _answer(request, (Permission.EXPORT,), _personas_csv)


async def audience_csv(request: Request) -> Response:
    return await _answer(request, (Permission.EXPORT,), _audience_csv)


async def signatures_zip(request: Request) -> Response:
    return await _answer(request, (Permission.EXPORT, Permission.VIEW_TECHNICAL_TRAITS), _signatures_zip)


routes = [
    Route("/export/personas.csv", personas_csv, methods=["GET"]),
    Route("/export/audiences/{audience_id}.csv", audience_csv, methods=["GET"]),
    Route("/export/signatures.zip", signatures_zip, methods=["GET"]),
]
