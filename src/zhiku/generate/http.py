"""A small HTTP client for LLM and embedding servers, on the standard library's ``http.client``.

Shared by the Ollama and OpenAI-compatible backends (chat, embeddings, model lists). It does three
things the backends should not each redo:

- **errors that say what to check**: every failure is a ``BackendError`` naming the backend, the URL
  and the likely fix (is the server running, is the model pulled, is the key set);
- **retries only where they are safe**: a refused connection (nothing was sent), and 429/503 (the
  server refused to do the work; ``Retry-After`` is honoured). Requests marked idempotent
  (embeddings, model lists) are also retried after a dropped connection or a 502/504. A chat
  request that timed out or was cut off is never re-sent: the server may still be generating;
- **proxies**: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` are honoured as other tools do, except
  for this machine's own addresses (a local Ollama must not be sent to a corporate proxy);
- **secrets stay secret**: the API key goes into the ``Authorization`` header only; it is removed
  from any text a server echoes back, and appears in no message, log line or ``repr``.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from zhiku.errors import BackendError, ConfigError

log = logging.getLogger("zhiku.llm")

#: never wait longer than this for a server's Retry-After
MAX_RETRY_AFTER_S = 30.0
_CONTEXT_WORDS = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "too many tokens",
    "prompt is too long",
    "maximum input length",
    "input length exceeds",
)


@dataclass(frozen=True)
class Hints:
    """What a user should check, per kind of failure; each backend fills in its own wording."""

    connect: str = "Is the server running, and is the base URL right?"
    timeout: str = "The server may be busy or the model still loading: raise the timeout option or try again"
    auth: str = "Check the API key"
    not_found: str = "Check the model name and the base URL"
    context: str = (
        "Ask with a smaller -k, or set [generator.options] context_window to the model's real "
        "window so zhiku packs less context"
    )
    server: str = "Check the server's log"
    protocol: str = "Check that the base URL points at the right kind of server"
    extra: dict[int, str] = field(default_factory=dict)  # status -> hint, for anything else


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


class HttpClient:
    """One server. ``timeout`` bounds each wait for data (socket.timeout is TimeoutError since 3.10)."""

    def __init__(
        self,
        backend: str,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        hints: Hints | None = None,
    ) -> None:
        self.backend = backend
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{backend}: base URL {base_url!r} is not an http(s) URL", "Use e.g. http://127.0.0.1:11434"
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._api_key = api_key or None
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.retries = retries
        self.backoff = backoff
        self.hints = hints or Hints()

    def __repr__(self) -> str:  # the key is deliberately absent
        return f"HttpClient({self.backend!r}, {self.base_url!r})"

    # -- public -------------------------------------------------------------------------------------
    def get_json(self, path: str) -> Any:
        return self._json(self._request("GET", path, None, idempotent=True), path)

    def post_json(self, path: str, body: Mapping[str, Any], idempotent: bool = False) -> Any:
        return self._json(self._request("POST", path, body, idempotent=idempotent), path)

    def stream_lines(self, path: str, body: Mapping[str, Any]) -> Iterator[str]:
        """POST and yield the response's lines (decoded, without line ends) as they arrive."""
        conn, resp = self._request("POST", path, body, idempotent=False)
        try:
            while True:
                try:
                    raw = resp.readline()
                except TimeoutError as e:
                    raise self.error(
                        f"stopped sending for {self.timeout:g}s in the middle of the answer",
                        self.hints.timeout,
                    ) from e
                except (http.client.HTTPException, OSError) as e:
                    raise self.error(
                        f"the connection broke in the middle of the answer ({e.__class__.__name__})",
                        self.hints.server,
                    ) from e
                if not raw:
                    return
                yield raw.decode("utf-8", errors="replace").rstrip("\r\n")
        finally:
            conn.close()

    def error(self, what: str, hint: str) -> BackendError:
        """A BackendError naming this backend and URL (secrets removed from ``what``)."""
        return BackendError(f"{self.backend} at {self.base_url}: {redact(what, self._secrets())}", hint)

    # -- internals ----------------------------------------------------------------------------------
    def _secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key else ()

    def _headers(self, has_body: bool) -> dict[str, str]:
        h = {"Accept": "application/json, text/event-stream, application/x-ndjson", "User-Agent": "zhiku"}
        if has_body:
            h["Content-Type"] = "application/json"
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        return h

    def _proxy(self) -> tuple[str, int] | None:
        """The HTTP(S)_PROXY to go through, if any: never for this machine (a local Ollama or vLLM)."""
        if self._host in ("localhost", "127.0.0.1", "::1"):
            return None
        url = urllib.request.getproxies().get("https" if self._https else "http")
        if not url or urllib.request.proxy_bypass(self._host):
            return None
        parts = urlsplit(url if "://" in url else "http://" + url)
        return (parts.hostname, parts.port or 8080) if parts.hostname else None

    def _connection(self) -> tuple[http.client.HTTPConnection, str]:
        """A connection, and the URL prefix of the request line (absolute through a plain proxy)."""
        proxy = self._proxy()
        if self._https:
            if proxy:
                conn = http.client.HTTPSConnection(*proxy, timeout=self.connect_timeout)
                conn.set_tunnel(self._host, self._port)
                return conn, self._prefix
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.connect_timeout
            ), self._prefix
        if proxy:
            origin = f"http://{self._host}" + (f":{self._port}" if self._port else "")
            return http.client.HTTPConnection(*proxy, timeout=self.connect_timeout), origin + self._prefix
        return http.client.HTTPConnection(self._host, self._port, timeout=self.connect_timeout), self._prefix

    def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None, idempotent: bool
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        attempt = 0
        while True:
            attempt += 1
            last = attempt > self.retries
            log.debug("%s %s%s (attempt %d)", method, self.base_url, path, attempt)
            conn, prefix = self._connection()
            try:
                conn.connect()
            except ConnectionRefusedError as e:
                conn.close()
                if not last:  # nothing was sent: always safe to try again
                    self._sleep(attempt, None)
                    continue
                raise self.error("connection refused", self.hints.connect) from e
            except TimeoutError as e:
                conn.close()
                raise self.error(f"no connection within {self.connect_timeout:g}s", self.hints.connect) from e
            except OSError as e:
                conn.close()
                raise self.error(
                    f"cannot connect ({e.strerror or e.__class__.__name__})", self.hints.connect
                ) from e
            if conn.sock is not None:
                conn.sock.settimeout(self.timeout)
            try:
                conn.request(method, prefix + path, body=data, headers=self._headers(data is not None))
                resp = conn.getresponse()
            except TimeoutError as e:
                conn.close()
                raise self.error(f"no response within {self.timeout:g}s", self.hints.timeout) from e
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                if idempotent and not last:
                    self._sleep(attempt, None)
                    continue
                raise self.error(
                    f"the connection was closed before a response ({e.__class__.__name__})", self.hints.server
                ) from e
            if resp.status < 400:
                return conn, resp
            text = self._read_error_body(resp)
            conn.close()
            retry_statuses = (429, 503, 502, 504) if idempotent else (429, 503)
            if resp.status in retry_statuses and not last:
                self._sleep(attempt, resp.getheader("Retry-After"))
                continue
            raise self.status_error(resp.status, text)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after:
            parsed = _parse_retry_after(retry_after)
            if parsed is not None:
                delay = parsed
        delay = min(delay, MAX_RETRY_AFTER_S)
        log.debug("%s: retrying in %.2fs", self.backend, delay)
        time.sleep(delay)

    def _read_error_body(self, resp: http.client.HTTPResponse) -> str:
        try:
            raw = resp.read(64_000)
        except (OSError, http.client.HTTPException):
            return ""
        text = raw.decode("utf-8", errors="replace").strip()
        try:
            data = json.loads(text)
        except ValueError:
            return text[:300]
        return server_message(data) or text[:300]

    def reported_error(self, message: str) -> BackendError:
        """An error the server reported inside a 200 response (a stream's error event)."""
        if _about_context(message):
            return self.error(
                f"the prompt does not fit the model's context window ({message})", self.hints.context
            )
        return self.error(f"the server reported an error: {message}", self.hints.server)

    def status_error(self, status: int, message: str) -> BackendError:
        detail = f"HTTP {status}" + (f": {message}" if message else "")
        if _about_context(message):
            return self.error(
                f"the prompt does not fit the model's context window ({detail})", self.hints.context
            )
        if status in (401, 403):
            return self.error(f"the API key was refused ({detail})", self.hints.auth)
        if status == 404:
            return self.error(f"not found ({detail})", self.hints.not_found)
        if status in self.hints.extra:
            return self.error(detail, self.hints.extra[status])
        if status in (429, 503):
            return self.error(
                f"the server is overloaded or rate-limited ({detail})",
                "Wait a little and try again, or lower the request rate",
            )
        if status >= 500:
            return self.error(f"server error ({detail})", self.hints.server)
        return self.error(f"the request was rejected ({detail})", self.hints.protocol)

    def _json(self, opened: tuple[http.client.HTTPConnection, http.client.HTTPResponse], path: str) -> Any:
        conn, resp = opened
        try:
            raw = resp.read()
        except TimeoutError as e:
            raise self.error(f"no complete response within {self.timeout:g}s", self.hints.timeout) from e
        except (OSError, http.client.HTTPException) as e:
            raise self.error(f"the response was cut off ({e.__class__.__name__})", self.hints.server) from e
        finally:
            conn.close()
        try:
            return json.loads(raw)
        except ValueError as e:
            sample = raw[:80].decode("utf-8", errors="replace")
            raise self.error(
                f"{path} did not return JSON (starts with {sample!r})", self.hints.protocol
            ) from e


def _about_context(message: str) -> bool:
    low = message.lower()
    return any(w in low for w in _CONTEXT_WORDS)


def server_message(data: Any) -> str:
    """The error text of an Ollama (``{"error": "..."}``) or OpenAI (``{"error": {"message"}}``) body."""
    if isinstance(data, dict):
        err = data.get("error", data.get("detail"))
        if isinstance(err, dict):
            return str(err.get("message") or err.get("code") or json.dumps(err, ensure_ascii=False))[:300]
        if isinstance(err, str):
            return err[:300]
        if isinstance(data.get("message"), str):
            return str(data["message"])[:300]
    return ""


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
