"""Server-sent events for every stream (ask, chat, job progress), in FastAPI's own wire format.

``fastapi.sse`` (FastAPI 0.165) writes the events. Its yield-style endpoints
(``response_class=EventSourceResponse`` on a generator path operation) do not fit the routers:
``/ask`` and ``/v1/chat/completions`` answer JSON or a stream depending on the request, so they
return a ``StreamingResponse`` of these events themselves.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.sse import format_sse_event

#: headers that keep proxies from buffering a stream
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data: Any, name: str | None = None) -> str:
    """One event; ``data`` is sent as JSON (a string stays raw only for OpenAI's ``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return format_sse_event(data_str=payload, event=name).decode()
