"""A loopback HTTP server speaking the Ollama and OpenAI wire formats, with scripted behaviour.

Real HTTP on 127.0.0.1, so zhiku's real clients, streaming parsers and error paths are exercised:

- Ollama: ``POST /api/chat`` (NDJSON stream), ``GET /api/tags``, ``POST /api/embed``;
- OpenAI: ``POST /v1/chat/completions`` (SSE stream, or one JSON body when ``stream`` is false),
  ``GET /v1/models``, ``POST /v1/embeddings``; ``Authorization: Bearer <key>`` is checked when the
  server has a key, and a wrong key is echoed back in the 401 message (as some servers do), so tests
  can check that zhiku never repeats it.

Replies come from ``server.reply(messages) -> str`` (default: a short answer citing [1]); failures
are scripted per endpoint with ``server.script("chat", Step(...), ...)``: each request to that
endpoint takes the next step, and when the script is empty the normal behaviour resumes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from zhiku.embed.hashing import HashingEmbedder

CHAT_PATHS = {"/api/chat": "ollama", "/v1/chat/completions": "openai"}
EMBED_PATHS = {"/api/embed": "ollama", "/v1/embeddings": "openai"}
MODEL_PATHS = {"/api/tags": "ollama", "/v1/models": "openai"}


@dataclass
class Step:
    """One scripted response.

    kind: ``reply`` (normal, optionally with ``text``), ``status`` (HTTP ``status`` with ``body``,
    a dict, and ``headers``), ``context`` (the server's context-length error), ``malformed`` (a
    garbage line in the stream), ``truncated`` (the stream stops before its end marker), ``slow``
    (``delay`` seconds before any response), ``stall`` (``delay`` seconds after the first piece),
    ``stream-error`` (an error event inside a 200 stream, ``body`` if given), ``not-json`` (an HTML page),
    ``ignore-stream`` (one JSON body although a stream was asked for, as some servers do).
    """

    kind: str = "reply"
    text: str | None = None
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def wire_events(flavour: str, model: str, n_pieces: int) -> tuple[Callable[[str], str], str, str]:
    """(one piece as a stream line, the end of the stream, an error event) in the backend's format."""
    if flavour == "ollama":

        def line(obj: dict[str, Any]) -> str:
            return json.dumps(obj, ensure_ascii=False) + "\n"

        def ollama_piece(p: str) -> str:
            message = {"role": "assistant", "content": p}
            return line(
                {"model": model, "created_at": "2024-01-01T00:00:00Z", "message": message, "done": False}
            )

        end = line(
            {
                "model": model,
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                "eval_count": n_pieces,
            }
        )
        return ollama_piece, end, line({"error": "an error was encountered while running the model"})

    def event(obj: dict[str, Any]) -> str:
        return "data: " + json.dumps(obj, ensure_ascii=False) + "\n\n"

    def chunk(delta: dict[str, str], finish: str | None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return event({"id": "c1", "object": "chat.completion.chunk", "model": model, "choices": [choice]})

    error = event({"error": {"message": "upstream model crashed", "code": "server_error"}})
    return (lambda p: chunk({"content": p}, None)), chunk({}, "stop") + "data: [DONE]\n\n", error


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) or closed a kept-alive connection is not an error.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def default_reply(messages: list[dict[str, str]]) -> str:
    return "The answer is in the first passage [1]."


class FakeLLMServer:
    def __init__(
        self,
        api_key: str | None = None,
        models: tuple[str, ...] = ("qwen2.5:7b", "bge-m3", "deepseek-chat", "text-embedding-3-small"),
        dim: int = 64,
        piece_chars: int = 3,
    ) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.embedder = HashingEmbedder(dim=dim)
        self.piece_chars = piece_chars
        self.reply: Callable[[list[dict[str, str]]], str] = default_reply
        self.requests: list[Recorded] = []
        #: absolute URLs requested, as a client sends them to an HTTP proxy
        self.proxied: list[str] = []
        self.scripts: dict[str, list[Step]] = {"chat": [], "embed": [], "models": []}
        #: when set, a stream pauses after its first piece until the event is set (streaming tests)
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- control --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def script(self, endpoint: str, *steps: Step) -> None:
        with self._lock:
            self.scripts[endpoint].extend(steps)

    def next_step(self, endpoint: str) -> Step:
        with self._lock:
            return self.scripts[endpoint].pop(0) if self.scripts[endpoint] else Step()

    def record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path in CHAT_PATHS]

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.gate is not None:
            self.gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Send each write at once, as real servers do (Go and asyncio set TCP_NODELAY): otherwise a
        # kept-alive connection waits ~40 ms on the client's delayed ACK at every response.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  keep test output clean
            pass

        # -- plumbing ---------------------------------------------------------------------------
        def _headers(self) -> dict[str, str]:
            # Header names are case-insensitive (httpx2 sends them in lower case): one spelling here.
            return {k.title(): v for k, v in self.headers.items()}

        def _body(self) -> Any:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return raw.decode("utf-8", "replace")

        def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(obj, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _start_stream(self, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _chunk(self, data: str) -> None:
            raw = data.encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()

        def _end_stream(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _error(self, flavour: str, status: int, message: str, code: str | None = None) -> None:
            if flavour == "ollama":
                self._send_json(status, {"error": message})
            else:
                self._send_json(
                    status, {"error": {"message": message, "type": "invalid_request_error", "code": code}}
                )

        # -- routing ----------------------------------------------------------------------------
        def _route(self) -> str:
            """The path; a request for an absolute URL (sent to a proxy) is noted and served too."""
            if self.path.startswith("http://"):
                server.proxied.append(self.path)
                return urlsplit(self.path).path
            return self.path

        def do_GET(self) -> None:  # noqa: N802
            path = self._route()
            server.record(Recorded("GET", path, self._headers(), None))
            flavour = MODEL_PATHS.get(path)
            if flavour is None:
                self._send_json(404, {"error": "404 page not found"})
                return
            if not self._authorised(flavour):
                return
            if self._scripted_failure(server.next_step("models"), flavour, stream=False):
                return
            if flavour == "ollama":
                self._send_json(200, {"models": [{"name": m, "model": m} for m in server.models]})
            else:
                self._send_json(
                    200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]}
                )

        def do_POST(self) -> None:  # noqa: N802
            body = self._body()
            path = self._route()
            server.record(Recorded("POST", path, self._headers(), body))
            if path in CHAT_PATHS:
                flavour, endpoint = CHAT_PATHS[path], "chat"
            elif path in EMBED_PATHS:
                flavour, endpoint = EMBED_PATHS[path], "embed"
            else:
                self._send_json(404, {"error": "404 page not found"})
                return
            if not self._authorised(flavour):
                return
            model = (body or {}).get("model", "")
            step = server.next_step(endpoint)
            stream = endpoint == "chat" and (body or {}).get("stream", flavour == "ollama")
            stream = stream and step.kind != "ignore-stream"
            if self._scripted_failure(step, flavour, stream=bool(stream)):
                return
            if model not in server.models:
                if flavour == "ollama":
                    self._error(flavour, 404, f'model "{model}" not found, try pulling it first')
                else:
                    self._error(flavour, 404, f"The model `{model}` does not exist", "model_not_found")
                return
            if endpoint == "embed":
                self._embed(flavour, body)
                return
            text = step.text if step.text is not None else server.reply(body.get("messages", []))
            self._chat(flavour, model, text, step, bool(stream))

        def _authorised(self, flavour: str) -> bool:
            if flavour != "openai" or not server.api_key:
                return True
            given = self.headers.get("Authorization", "")
            if given == f"Bearer {server.api_key}":
                return True
            supplied = given.removeprefix("Bearer ")
            # Echo the key back, as some servers do: zhiku must not repeat it.
            self._error(
                flavour,
                401,
                f"Incorrect API key provided: {supplied}. You can find your key at …",
                "invalid_api_key",
            )
            return False

        def _scripted_failure(self, step: Step, flavour: str, stream: bool) -> bool:
            if step.kind == "slow":
                time.sleep(step.delay)
                return False
            if step.kind == "status":
                self._send_json(step.status, step.body or {}, step.headers)
                return True
            if step.kind == "context":
                if flavour == "ollama":
                    self._error(flavour, 400, "input length exceeds the context length")
                else:
                    self._error(
                        flavour,
                        400,
                        "This model's maximum context length is 128 tokens. However, you "
                        "requested 9000 tokens. Please reduce the length of the messages.",
                        "context_length_exceeded",
                    )
                return True
            if step.kind == "not-json":
                data = b"<html><body>Welcome to nginx!</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True
            return False

        # -- endpoints --------------------------------------------------------------------------
        def _embed(self, flavour: str, body: dict[str, Any]) -> None:
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else list(texts or [])
            vectors = server.embedder.embed_batch(texts).tolist() if texts else []
            if flavour == "ollama":
                self._send_json(200, {"model": body["model"], "embeddings": vectors})
            else:
                self._send_json(
                    200,
                    {
                        "object": "list",
                        "model": body["model"],
                        "data": [
                            {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
                        ],
                    },
                )

        def _chat(self, flavour: str, model: str, text: str, step: Step, stream: bool) -> None:
            if not stream:
                self._send_json(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )
                return
            n = server.piece_chars
            pieces = [text[i : i + n] for i in range(0, len(text), n)] or [""]
            if flavour == "ollama":
                self._start_stream("application/x-ndjson")
            else:
                self._start_stream("text/event-stream")
            piece_of, end, error_event = wire_events(flavour, model, len(pieces))
            try:
                for i, p in enumerate(pieces):
                    self._chunk(piece_of(p))
                    if i == 0:
                        if server.gate is not None:
                            server.gate.wait(timeout=5)
                        if step.kind == "stall":
                            time.sleep(step.delay)
                            return
                        if step.kind == "malformed":
                            self._chunk("data: {not json\n\n" if flavour == "openai" else "{not json\n")
                            self._end_stream()
                            return
                        if step.kind == "stream-error":
                            if step.body is not None:  # the test's own error object
                                error_event = (
                                    json.dumps(step.body) + "\n"
                                    if flavour == "ollama"
                                    else f"data: {json.dumps(step.body)}\n\n"
                                )
                            self._chunk(error_event)
                            self._end_stream()
                            return
                if step.kind != "truncated":
                    self._chunk(end)
                self._end_stream()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to do

    return Handler
