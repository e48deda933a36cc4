"""GraphQL over HTTP, as the spec's audit (graphql-http's serverAudits) checks it.

- POST with `Content-Type: application/json` (utf-8), one operation per body;
  a JSON array (a batch) is refused with 400, any other media type with 415.
- GET for queries only: a mutation over GET answers 405 with `Allow: POST`.
- The answer is `application/graphql-response+json` when the client asks for
  it, else `application/json`. A request that cannot run (bad parameters,
  unparsable or invalid document, variables that do not coerce, a limit or
  the cost refused it) has no `data` entry and answers 400 under
  graphql-response+json, 200 under application/json (as the spec says for
  legacy clients). THROTTLED answers 429 with Retry-After under both.
- Persisted queries (schema/persisted.py) are resolved here, where the
  viewer's role is known.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from routes.http_guards import BodyTooLarge
from schema.cost import bucket_for, cost_extension
from schema.errors import BAD_QUERY, BAD_USER_INPUT, FORBIDDEN, INTERNAL_SERVER_ERROR, THROTTLED
from schema.persisted import PersistedQueries, PersistedQueryError, resolve_document
from schema.vetted import answer_vetted

if TYPE_CHECKING:
    from app import PersonaGraphQL

logger = logging.getLogger("personagraph.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def negotiate(accept: str | None) -> str:
    """The response media type: the acceptable one with the highest q; application/json by default."""
    best, best_q = JSON, -1.0
    for media_range in (accept or "").split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = kind.lower()
        if q <= 0:
            continue
        if kind == GRAPHQL_RESPONSE:
            candidate = GRAPHQL_RESPONSE
        elif kind in {JSON, "application/*", "*/*"}:
            candidate = JSON
        else:
            continue
        # On a tie the more precise graphql-response+json wins.
        if q > best_q or (q == best_q and candidate == GRAPHQL_RESPONSE):
            best, best_q = candidate, q
    return best


class RequestProblem(Exception):
    """A request that cannot run, answered with `status` and one error."""

    def __init__(self, status: int, message: str, code: str = BAD_QUERY, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass(frozen=True)
class Params:
    query: str | None
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


def _json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestProblem(400, f"'{name}' must be a JSON object.", BAD_USER_INPUT) from None


async def _json_body(request: Request) -> dict[str, Any]:
    media_type, _, parameters = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() != JSON:
        raise RequestProblem(415, "Send the request body as application/json.", headers={"Accept-Post": JSON})
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {"utf-8", "utf8"}:
            raise RequestProblem(415, "Request bodies must be UTF-8.")
    try:
        body = await request.body()
    except BodyTooLarge as too_large:
        raise RequestProblem(413, str(too_large), BAD_USER_INPUT) from None
    if not body:
        raise RequestProblem(400, 'The request body is empty: send {"query": "..."}.')
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestProblem(400, "The request body is not valid JSON.") from None
    if isinstance(data, list):
        raise RequestProblem(400, "Batched operations are not supported: send one operation per request.")
    if not isinstance(data, dict):
        raise RequestProblem(400, "The request body must be a JSON object.")
    return data


async def read_params(request: Request) -> Params:
    if request.method == "GET":
        raw = request.query_params
        data: dict[str, Any] = {
            "query": raw.get("query"),
            "operationName": raw.get("operationName"),
            "variables": _json_param(raw.get("variables"), "variables"),
            "extensions": _json_param(raw.get("extensions"), "extensions"),
        }
    else:
        data = await _json_body(request)
    query, name = data.get("query"), data.get("operationName")
    variables, extensions = data.get("variables"), data.get("extensions")
    if query is not None and not isinstance(query, str):
        raise RequestProblem(400, "'query' must be a string.")
    if name is not None and not isinstance(name, str):
        raise RequestProblem(400, "'operationName' must be a string.")
    if variables is not None and not isinstance(variables, dict):
        raise RequestProblem(400, "'variables' must be an object.", BAD_USER_INPUT)
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestProblem(400, "'extensions' must be an object.")
    if query is None and not (extensions or {}).get("persistedQuery"):
        raise RequestProblem(400, "Send a GraphQL document in 'query' (or a persisted query's hash).")
    return Params(query, name, variables, extensions)


def _encode(view: PersonaGraphQL, body: dict[str, Any], status: int, media: str, headers: dict[str, str]) -> Response:
    return Response(
        view.encode_json(body),
        status_code=status,
        headers={**headers, "Content-Type": f"{media}; charset=utf-8", "Vary": "Accept, Authorization"},
    )


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


def masked_failure(status: int, exc: BaseException | None, *, message: str = "Unexpected error.") -> Response:
    """A failure outside GraphQL execution (database down, timeout): masked, with an id the log carries."""
    error_id = uuid.uuid4().hex[:12]
    reason = type(exc).__name__ if exc is not None else "timeout"
    logger.error("unexpected error %s outside execution: %s", error_id, reason)
    body = error_body(message, INTERNAL_SERVER_ERROR, errorId=error_id)
    headers = {"Content-Type": f"{JSON}; charset=utf-8"}
    if status == 503:
        headers["Retry-After"] = "5"
    return Response(orjson.dumps(body), status_code=status, headers=headers)


async def serve(request: Request, view: PersonaGraphQL) -> Response:
    """Run one GraphQL request for the authenticated viewer (request.state.viewer)."""
    media = negotiate(request.headers.get("accept"))
    viewer = request.state.viewer
    settings = view.settings
    bucket = bucket_for(request.app.state, viewer)

    def refuse(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
        body = {**error_body(message, code), "extensions": {"cost": cost_extension(0, 0, bucket)}}
        return _encode(view, body, status, media, headers or {})

    def request_error_status() -> int:
        return 400 if media == GRAPHQL_RESPONSE else 200

    try:
        params = await read_params(request)
        registry: PersistedQueries = request.app.state.persisted_queries
        query = resolve_document(
            params.query,
            params.extensions,
            registry,
            registered_only=viewer.role.value in settings.persisted_only_roles,
        )
    except RequestProblem as problem:
        return refuse(problem.status, problem.message, problem.code, problem.headers)
    except PersistedQueryError as refused:
        status = 403 if refused.code == FORBIDDEN else request_error_status()
        return refuse(status, refused.error.message, refused.code)

    is_get = request.method == "GET"
    allowed = {OperationType.QUERY} if is_get else {OperationType.QUERY, OperationType.MUTATION}
    context = await view.get_context(request, None)
    vetted = await answer_vetted(view.schema, query, params.operation_name, params.variables, context)
    if vetted is not None:
        return _encode(view, vetted, 200, media, {})
    try:
        result = await view.schema.execute(
            query,
            variable_values=params.variables,
            context_value=context,
            operation_name=params.operation_name,
            allowed_operation_types=allowed,
            operation_extensions=params.extensions,
        )
    except InvalidOperationTypeError as invalid:
        if is_get and invalid.operation_type == OperationType.MUTATION:
            return refuse(405, "Mutations must be sent with POST.", BAD_QUERY, {"Allow": "POST"})
        return refuse(request_error_status(), "Subscriptions are not supported.", BAD_QUERY)
    except CannotGetOperationTypeError as unknown:
        return refuse(request_error_status(), unknown.as_http_error_reason(), BAD_QUERY)

    errors = [_formatted(e) for e in result.errors or ()]
    executed = result.data is not None or any("path" in e for e in errors)
    body: dict[str, Any] = {}
    if executed:
        body["data"] = result.data
    if errors:
        body["errors"] = errors
    body["extensions"] = result.extensions or {"cost": cost_extension(0, 0, bucket)}
    headers: dict[str, str] = {}
    codes = {(e.get("extensions") or {}).get("code") for e in errors}
    if THROTTLED in codes:
        status = 429
        throttled = next(e for e in errors if (e.get("extensions") or {}).get("code") == THROTTLED)
        headers["Retry-After"] = str(throttled["extensions"]["retryAfter"])
    elif not executed:
        status = request_error_status()
    else:
        status = 200
    return _encode(view, body, status, media, headers)


def _formatted(error: GraphQLError) -> dict[str, Any]:
    return dict(error.formatted)
