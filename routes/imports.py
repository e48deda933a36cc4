"""CSV contact import over HTTP, with an API key and the INGEST permission.

    POST /import/contacts     multipart/form-data: file=<the CSV>, source=<name> (optional, default RAW_FILE)

The columns are those of `personagraph import-csv` (resolvers/csv_import.py,
README "CSV import"). The answer streams as lines are imported:

    {"lines": [{"line": 2, "outcome": "CREATED", "persona": 17, "errors": []}, ...],
     "summary": {"lines": ..., "created": ..., "updated": ..., "merged": ..., "rejected": ...}}

plus "error" when the file turned out broken part-way (the lines before it
stay imported). A file refused as a whole (not UTF-8, no header, unknown
columns) is a 400 before anything is written. Errors use the GraphQL error
vocabulary: 401 UNAUTHENTICATED, 403 FORBIDDEN, 400 BAD_USER_INPUT. The
request body is bounded by MAX_BODY_BYTES like every request: bigger files
go through the command line.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from database import Database
from permissions.keys import authenticate
from permissions.matrix import Permission
from permissions.viewer import Viewer
from resolvers.audit import audit_entry
from resolvers.csv_import import CsvFileError, ImportSummary, LineReport, import_csv
from resolvers.errors import ApiError
from resolvers.ingest import RAW_FILE
from settings import Settings

logger = logging.getLogger("personagraph.imports")
OPERATION = "importContacts"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers=headers)


async def _viewer(request: Request) -> Viewer | Response:
    scheme, _, raw_key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw_key.strip():
        challenge = {"WWW-Authenticate": 'Bearer realm="personagraph"'}
        return _error(401, "UNAUTHENTICATED", "Send an API key: 'Authorization: Bearer <key>'.", challenge)
    db: Database = request.app.state.db
    async with db.read() as conn:
        found = await authenticate(conn, raw_key.strip())
    if found is None:
        return _error(401, "UNAUTHENTICATED", "The API key is unknown, malformed or revoked.")
    if not found.viewer.can(Permission.INGEST):
        return _error(403, "FORBIDDEN", "Your role may not do this: it needs the INGEST permission.")
    return found.viewer


async def import_contacts(request: Request) -> Response:
    viewer = await _viewer(request)
    if isinstance(viewer, Response):
        return viewer
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _error(400, "BAD_USER_INPUT", "Send the CSV as multipart/form-data, in a field named 'file'.")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return _error(400, "BAD_USER_INPUT", "Send the CSV as multipart/form-data, in a field named 'file'.")
    source = form.get("source") or request.query_params.get("source") or RAW_FILE
    if not isinstance(source, str):
        return _error(400, "BAD_USER_INPUT", "source must be text.")
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    lines = import_csv(
        db,
        viewer.org_id,
        upload.file,
        source=source,
        actor=f"{viewer.name} (CSV upload)",
        number_block=settings.persona_number_block,
    ).__aiter__()
    # The header and the encoding are checked on the first step: a broken file is refused whole, as a 400.
    try:
        first = await anext(lines, None)
    except ApiError as e:
        await form.close()
        return _error(400, "BAD_USER_INPUT", e.message)
    return StreamingResponse(
        _report(db, viewer, first, lines, form.close),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def _report(
    db: Database,
    viewer: Viewer,
    first: LineReport | None,
    rest: AsyncIterator[LineReport],
    close: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    summary = ImportSummary()
    failure: str | None = None
    yield b'{"lines":['
    try:
        report = first
        while report is not None:
            yield (b"," if summary.lines else b"") + orjson.dumps(report.as_dict())
            summary.add(report)
            report = await anext(rest, None)
    except CsvFileError as e:
        failure = e.message
    except Exception as exc:  # the answer has started: say so in it, and log what (never the data)
        error_id = uuid.uuid4().hex[:12]
        # The type and the frames, never the message: a driver's message can carry a customer's data.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        logger.error("CSV import %s failed: %s\n%s", error_id, type(exc).__name__, frames)
        failure = f"Unexpected error (id {error_id}); the lines reported above were imported."
    finally:
        await close()
    tail: dict[str, object] = {"summary": summary.as_dict()}
    if failure is not None:
        tail["error"] = failure
    yield b"]," + orjson.dumps(tail)[1:]
    async with db.session() as session, session.begin():
        outcome = "OK" if failure is None else "FAILED"
        detail = " ".join(f"{k}={v}" for k, v in summary.as_dict().items())
        session.add(audit_entry(viewer, OPERATION, [], outcome, detail))


routes = [Route("/import/contacts", import_contacts, methods=["POST"])]
