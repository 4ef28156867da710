"""The request body limit: Starlette's ``RequestBodyLimitMiddleware``, with the limit chosen per request.

Uploads get the configurable limit (``--max-upload-mb``), every other request a fixed one for JSON
(``limit_for`` in ``app.py``). Starlette counts the body as it arrives (a chunked body is cut off at
the limit) and raises its 413 inside body parsing, where ``errors.py`` words it like every other
error.

What stays here, and why: FastAPI 0.165 also takes ``max_body_size`` on the app and on routers, but
for a request that *declares* a Content-Length over the limit, Starlette 1.10 replaces whatever the
app answers with a plain-text "Content Too Large" (checked: a 100 KB upload over a 50 KB limit), which
breaks the API's ``{"error": {"code", "message"}}`` format. So a declared length over the limit is
refused here first, in that format, after reading what the client is still sending (a client cut
off mid-upload may report a broken connection instead of the 413)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from zhiku.api.errors import error_response, too_large


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _drain(receive, cap=max(4 * limit, 64 * 2**20))
            await error_response(413, "too_large", too_large(limit))(scope, receive, send)
            return
        await RequestBodyLimitMiddleware(self.app, limit)(scope, receive, send)


async def _drain(receive: Receive, cap: int) -> None:
    total = 0
    while total <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
