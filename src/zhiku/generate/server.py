"""What zhiku adds around the HTTP clients of LLM and embedding servers.

The transport is a library: Ollama is spoken through ``httpx2`` (``ollama.py``), OpenAI-compatible
servers through the official ``openai`` client (``openai_compat.py``), which runs on ``httpx2`` too,
so both share one HTTP stack, one client per server (kept-alive connections) and this module's
policy:

- **errors that say what to check**: every failure is a ``BackendError`` naming the backend, the URL
  and the likely fix (is the server running, is the model pulled, is the key set);
- **retries only where they are safe**: a refused connection (nothing was sent), and 429/503 (the
  server refused to do the work; ``Retry-After`` is honoured). Requests marked idempotent
  (embeddings, model lists) are also retried after a dropped connection or a 502/504. A chat
  request that timed out, got a 500 or was cut off is never re-sent: the server may still be
  generating. The openai client's own retries (which re-send after timeouts and 5xx) are off;
- **proxies**: httpx2 honours ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` as other
  tools do (credentials in the proxy URL included); this machine's own addresses always go direct
  (a local Ollama must not be sent to a corporate proxy);
- **secrets stay secret**: the API key goes into the ``Authorization`` header only; it is removed
  from any text a server echoes back, and appears in no message, log line, exception chain or
  ``repr`` (a server's error response is never chained: it may carry the key).
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from zhiku.errors import BackendError, ConfigError

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger("zhiku.llm")
T = TypeVar("T")

#: never wait longer than this for a server's Retry-After
MAX_RETRY_AFTER_S = 30.0
#: this machine: never through a proxy
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
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


class StatusFailure(Exception):
    """An HTTP error status, raised inside ``Server.call`` (never seen outside it)."""

    def __init__(self, status: int, body: bytes | str, retry_after: str | None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.retry_after = retry_after


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


class Server:
    """One server as zhiku sees it: its httpx2 client, its error wording and its retry policy."""

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
        self._api_key = api_key or None
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.retries = retries
        self.backoff = backoff
        self.hints = hints or Hints()
        self._client: httpx2.Client | None = None

    def __repr__(self) -> str:  # the key is deliberately absent
        return f"Server({self.backend!r}, {self.base_url!r})"

    @property
    def client(self) -> httpx2.Client:
        """The httpx2 client for this server (created on first use; the openai client is given it)."""
        if self._client is None:
            import httpx2

            self._client = httpx2.Client(
                timeout=httpx2.Timeout(self.timeout, connect=self.connect_timeout),
                # trust_env reads the proxy variables; these patterns take precedence over them.
                mounts={f"all://{host}": None for host in LOCAL_HOSTS},
                follow_redirects=True,
                headers={"User-Agent": "zhiku"},
            )
        return self._client

    # -- calls and their failures -------------------------------------------------------------------
    def call(self, send: Callable[[], T], *, idempotent: bool) -> T:
        """``send()``, retried where that is safe; every transport failure becomes a BackendError."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return send()
            except StatusFailure as e:  # never chained: the body may carry the key
                safe = e.status in ((429, 503, 502, 504) if idempotent else (429, 503))
                if safe and attempt <= self.retries:
                    self._sleep(attempt, e.retry_after)
                    continue
                raise self.status_error(e.status, error_text(e.body)) from None
            except (BackendError, ConfigError):
                raise
            except Exception as e:
                error, safe = self._transport_error(e, idempotent)
                if error is None:
                    raise  # not a transport failure: a bug, keep its traceback
                if safe and attempt <= self.retries:
                    self._sleep(attempt, None)
                    continue
                raise error from e

    def _transport_error(self, e: Exception, idempotent: bool) -> tuple[BackendError | None, bool]:
        """The error for a request that got no response, and whether re-sending it is safe."""
        import httpx2

        if _find(e, ConnectionRefusedError):  # nothing was sent
            return self.error("connection refused", self.hints.connect), True
        if _find(e, httpx2.ProxyError):
            hint = "Check HTTPS_PROXY/HTTP_PROXY, or list the server's host in NO_PROXY"
            return self.error("the HTTP proxy refused the connection", hint), False
        if _find(e, httpx2.ConnectTimeout):
            return self.error(f"no connection within {self.connect_timeout:g}s", self.hints.connect), False
        if _find(e, httpx2.ConnectError):
            why = getattr(_find(e, OSError), "strerror", None) or "ConnectError"
            return self.error(f"cannot connect ({why})", self.hints.connect), False
        if _find(e, httpx2.TimeoutException):  # the server may still be working on it
            return self.error(f"no response within {self.timeout:g}s", self.hints.timeout), False
        dropped = _find(e, httpx2.TransportError)
        if dropped is None:
            return None, False
        what = f"the connection was closed before a response ({type(dropped).__name__})"
        return self.error(what, self.hints.server), idempotent

    def broken_stream(self, e: Exception) -> BackendError:
        """The error for a stream that failed after the response began."""
        import httpx2

        if _find(e, httpx2.TimeoutException):
            return self.error(
                f"stopped sending for {self.timeout:g}s in the middle of the answer", self.hints.timeout
            )
        name = type(_find(e, httpx2.TransportError) or e).__name__
        return self.error(f"the connection broke in the middle of the answer ({name})", self.hints.server)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after:
            parsed = _parse_retry_after(retry_after)
            if parsed is not None:
                delay = parsed
        delay = min(delay, MAX_RETRY_AFTER_S)
        log.debug("%s: retrying in %.2fs", self.backend, delay)
        time.sleep(delay)

    # -- messages -----------------------------------------------------------------------------------
    def error(self, what: str, hint: str) -> BackendError:
        """A BackendError naming this backend and URL (secrets removed from ``what``)."""
        return BackendError(f"{self.backend} at {self.base_url}: {redact(what, self._secrets())}", hint)

    def _secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key else ()

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

    def not_json(self, path: str, raw: bytes | str) -> BackendError:
        sample = raw[:80].decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw[:80]
        return self.error(f"{path} did not return JSON (starts with {sample!r})", self.hints.protocol)

    # -- httpx2 requests (Ollama) -------------------------------------------------------------------
    def open(self, method: str, path: str, body: Any = None, *, idempotent: bool) -> httpx2.Response:
        """Send a request and return the response once its headers are in (the body still to read)."""
        client = self.client

        def send() -> httpx2.Response:
            log.debug("%s %s%s", method, self.base_url, path)
            request = client.build_request(method, self.base_url + path, json=body)
            response = client.send(request, stream=True)
            if response.status_code >= 400:
                try:
                    raw = response.read()
                except Exception:  # noqa: BLE001  the status says enough
                    raw = b""
                finally:
                    response.close()
                raise StatusFailure(response.status_code, raw, response.headers.get("Retry-After"))
            return response

        return self.call(send, idempotent=idempotent)

    def get_json(self, path: str) -> Any:
        return self._json(self.open("GET", path, idempotent=True), path)

    def post_json(self, path: str, body: Any, idempotent: bool = False) -> Any:
        return self._json(self.open("POST", path, body, idempotent=idempotent), path)

    def stream_lines(self, path: str, body: Any) -> Iterator[str]:
        """POST and yield the response's lines (without line ends) as they arrive."""
        import httpx2

        response = self.open("POST", path, body, idempotent=False)
        try:
            yield from response.iter_lines()
        except httpx2.TransportError as e:
            raise self.broken_stream(e) from e
        finally:
            response.close()

    def _json(self, response: httpx2.Response, path: str) -> Any:
        import httpx2

        try:
            raw = response.read()
        except httpx2.TimeoutException as e:
            raise self.error(f"no complete response within {self.timeout:g}s", self.hints.timeout) from e
        except httpx2.TransportError as e:
            raise self.error(f"the response was cut off ({type(e).__name__})", self.hints.server) from e
        finally:
            response.close()
        try:
            return json.loads(raw)
        except ValueError as e:
            raise self.not_json(path, raw) from e


def _find(e: BaseException, kind: type[Any]) -> Any:
    """The first exception of ``kind`` in ``e``'s chain of causes (the openai client wraps httpx2's)."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _about_context(message: str) -> bool:
    low = message.lower()
    return any(w in low for w in _CONTEXT_WORDS)


def error_text(body: bytes | str) -> str:
    """The message of an error response: its JSON error field, else the start of its text."""
    text = (body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body).strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    return server_message(data) or text[:300]


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
