"""A request body limit, enforced before anything is parsed or written to disk.

A declared Content-Length over the limit is refused at once; a body sent without one (chunked) is
counted as it arrives and cut off at the limit. Uploads get the configurable limit, every other
request a fixed one for JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhiku.api.errors import error_body


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit / 2**20:g} MB. Send smaller "
                              "files (or fewer at once), or start the server with a larger --max-upload-mb")


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
            await _refuse(send, BodyTooLarge(limit))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside body parsing, where FastAPI re-raises HTTPExceptions unchanged.
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


async def _drain(receive: Receive, cap: int) -> None:
    # Read (and drop) what the client is still sending: a client that is cut off mid-upload reports
    # a broken connection instead of the 413 and its message.
    total = 0
    while total <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _refuse(send: Send, exc: BodyTooLarge) -> None:
    body = json.dumps(error_body("too_large", str(exc.detail)), ensure_ascii=False).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"connection", b"close"),
                          (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
