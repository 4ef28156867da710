"""Server-sent events: the wire format, written once for every stream (ask, chat, job progress)."""

from __future__ import annotations

import json
from typing import Any

#: headers that keep proxies from buffering a stream
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data: Any, name: str | None = None) -> str:
    """One event; ``data`` is sent as JSON (a string stays raw only for OpenAI's ``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"
