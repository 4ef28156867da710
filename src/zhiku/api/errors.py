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
