"""Cross-site protection: the Host a request names, and the page a change comes from.

A browser lets any web page send a form POST (multipart included) to ``http://127.0.0.1:PORT``
without asking first, and DNS rebinding lets a page read from it under its own name. Two checks
close both, before any route runs:

- **Host**: only the names the server is bound to (plus ``--allowed-host`` names; plus the loopback
  names when bound to loopback) are answered. A rebinding page sends its own name and is refused.
  Bound to every interface (0.0.0.0), the names are unknown, so only ``--allowed-host`` restricts.
- **Origin**: a request that can change something (anything but GET/HEAD/OPTIONS) carrying an
  ``Origin`` header must come from this server's own page (same host and port). Scripts and the
  openai client send no Origin and are unaffected; the key check still applies to them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from zhiku.api.errors import error_body

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The Host names a server bound to ``bind`` answers to; ``None``: any (bound to all interfaces)."""
    names = {h.strip().strip("[]").lower() for h in extra if h.strip()}
    bind = bind.strip().strip("[]").lower()
    if bind in ("", "0.0.0.0", "::"):
        return frozenset(names) or None
    names.add(bind)
    if _is_loopback(bind):
        names |= LOOPBACK_NAMES
    return frozenset(names)


def host_name(authority: str) -> str:
    """``"[::1]:8000"`` → ``"::1"``, ``"Example.org:80"`` → ``"example.org"``."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


class SameOrigin:
    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            shown = host or "(none)"
            await _refuse(
                send,
                400,
                "bad_host",
                f"this server does not answer to the host name {shown!r}. Open it by the address it "
                f"listens on ({', '.join(sorted(self.hosts))}), or start it with --allowed-host NAME",
            )
            return
        origin = headers.get("origin")
        if origin is not None and scope.get("method", "GET") not in SAFE_METHODS:
            parts = urlsplit(origin)
            if origin == "null" or parts.netloc.lower() != host.strip().lower():
                await _refuse(
                    send,
                    403,
                    "cross_origin",
                    f"refusing a change requested by the web page at {origin}: only this server's "
                    "own page may change it. Use the page the server serves at /, or call the API "
                    "from a script (no Origin header)",
                )
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message), ensure_ascii=False).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
