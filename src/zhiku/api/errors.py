"""One exception-to-HTTP mapping: every error leaves the API as ``{"error": {"code", "message"}}``.

Domain errors carry their own status and code (``ZhikuError.http_status``/``.code``); request
validation becomes 422, a body that is not JSON 400, and framework errors (unknown route, wrong
method, missing key) keep their status with a code from ``_HTTP_CODES``. Anything else is a bug: it
is logged with its traceback and answered with a 500 that leaks no internals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhiku.errors import ZhikuError

log = logging.getLogger("zhiku.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_format",
    422: "invalid_request",
    423: "locked",
    429: "too_many_requests",
    500: "internal",
    501: "not_implemented",
    502: "backend_error",
    503: "unavailable",
}


#: the body of every error response, inline and always JSON (a ``model=`` would be declared under
#: the route's own media type: text/plain on a report route, where errors are still JSON)
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
#: when each error status is answered, for the OpenAPI schema (``error_responses``)
_WHEN = {
    400: "a request that cannot be read: not JSON, a bad knowledge base name, a Host the server does "
    "not answer to",
    401: "the server has an API key and the request did not send it (Authorization: Bearer <key>)",
    403: "a change requested by another site's page (Origin)",
    404: "no such knowledge base (or document, job, run, conversation, model)",
    409: "a conflict: the name exists, or the index this needs is not built",
    413: "the request body (or an upload) is over the server's limit",
    415: "no file in a format zhiku reads",
    422: "a request that breaks the schema, or a file or data set that cannot be used",
    423: "the knowledge base is being changed by another writer: try again when it is done",
    501: "an optional dependency this needs is not installed",
    502: "the language model or vector service behind it failed",
    503: "the knowledge base's catalog is damaged, or the server is not ready",
}

#: answered by any route: the request cannot be read, is too large, or breaks the schema
ANY_ROUTE = (400, 413, 422)
#: answered by any route behind the API key, on a knowledge base (``app.py`` adds them to all)
KB_ROUTE = (401, 403, 404, 409, 423, 501, 502, 503)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for FastAPI: each status with the error body, so the schema declares every
    status a route can answer (a client generated from it knows what it may get)."""
    content = {"application/json": {"schema": ERROR_SCHEMA}}
    return {s: {"description": _WHEN[s], "content": content} for s in statuses}


#: what a client is told about a bug (the traceback goes to the server's log only)
BUG = "internal error (a bug in zhiku: the server log has the details)"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def zhiku_error_body(e: ZhikuError) -> dict[str, Any]:
    """The body of a domain error, also sent as the last event of a stream that fails midway."""
    return error_body(e.code, e.one_line())


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    more = len(exc.errors()) - 1
    text = f"{_where(first.get('loc', ()))}: {first.get('msg', 'invalid')}"
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else "")


def too_large(limit: int | None) -> str:
    """The message of a 413 (the body limits are set in ``app.py``, enforced by ``limits.py``)."""
    over = f" of {limit / 2**20:.3g} MB" if isinstance(limit, int) else ""
    return (
        f"the request body is over the limit{over}. Send smaller files (or fewer at once), or start "
        "the server with a larger --max-upload-mb"
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ZhikuError)
    async def _domain(request: Request, exc: ZhikuError) -> JSONResponse:
        return JSONResponse(zhiku_error_body(exc), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = (errors[0].get("ctx") or {}).get("error", "")
            message = f"the request body is not valid JSON: {detail}".rstrip(": ")
            how = ". Send a JSON object with Content-Type: application/json"
            return error_response(400, "bad_json", message + how)
        return error_response(422, "invalid_request", validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}. See /docs for the API"
        elif exc.status_code == 413:
            from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

            message = too_large(request.scope.get(MAX_BODY_SIZE_SCOPE_KEY))
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}. See /docs for the API"
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(500, "internal", BUG)
