"""A loopback HTTP server speaking the two rerank wire formats, with scripted failures.

- Cohere/Jina/vLLM/Xinference: ``POST /v1/rerank`` ``{"model", "query", "documents", "top_n"}`` ->
  ``{"id", "model", "results": [{"index", "relevance_score", "document"}], "usage"}``, results
  sorted by score and cut to ``top_n`` as those servers do;
- text-embeddings-inference: ``POST /rerank`` ``{"query", "texts", "truncate"}`` ->
  ``[{"index", "score"}]`` sorted by score.

Scores are real (not random): the share of the query's characters (CJK) and words (Latin) found in
the passage, so a test can check that reranking puts the matching passage first. With ``api_key``
set, ``Authorization: Bearer <key>`` is required and a wrong key is echoed in the 401 message (as
some servers do) so tests can check zhiku never repeats it. Failures are scripted per request with
``server.script(Step(...))`` (``fake_llm_server.Step``: ``status``, ``slow``, ``not-json``) plus the
kinds ``short`` (one result missing) and ``bad-shape`` (a JSON body of the wrong shape).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.integration.fake_llm_server import Recorded, Step, _QuietServer

_TOKEN = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]+")
MODEL = "bge-reranker-v2-m3"


def overlap(query: str, passage: str) -> float:
    q = set(_TOKEN.findall(query.lower()))
    p = set(_TOKEN.findall(passage.lower()))
    return round(len(q & p) / len(q), 6) if q else 0.0


class FakeRerankServer:
    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.steps: list[Step] = []
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *steps: Step) -> None:
        with self._lock:
            self.steps.extend(steps)

    def next_step(self) -> Step:
        with self._lock:
            return self.steps.pop(0) if self.steps else Step()

    def __enter__(self) -> FakeRerankServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: FakeRerankServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj, ensure_ascii=False).encode())

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            server.requests.append(Recorded("POST", self.path, dict(self.headers), body))
            if self.path not in ("/v1/rerank", "/rerank"):
                self._json(404, {"error": "Not Found"})
                return
            if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                self._json(401, {"message": f"invalid api key {given}"})
                return
            step = server.next_step()
            if step.kind == "slow":
                time.sleep(step.delay)
            elif step.kind == "status":
                self._json(step.status, step.body or {})
                return
            elif step.kind == "not-json":
                self._send(200, b"<html>Welcome to nginx!</html>", "text/html")
                return
            elif step.kind == "bad-shape":
                self._json(200, {"data": [1, 2, 3]})
                return
            if self.path == "/v1/rerank":
                self._cohere(body or {}, step)
            else:
                self._tei(body or {}, step)

        def _scores(self, query: str, texts: list[str], step: Step) -> list[tuple[int, float]]:
            rows = [(i, overlap(query, t)) for i, t in enumerate(texts)]
            rows.sort(key=lambda r: -r[1])
            return rows[:-1] if step.kind == "short" else rows

        def _cohere(self, body: dict[str, Any], step: Step) -> None:
            if body.get("model") != MODEL:
                self._json(404, {"detail": f"The model `{body.get('model')}` does not exist."})
                return
            docs = list(body.get("documents") or [])
            rows = self._scores(str(body.get("query", "")), docs, step)[: int(body.get("top_n") or len(docs))]
            self._json(
                200,
                {
                    "id": "rerank-1",
                    "model": MODEL,
                    "results": [
                        {"index": i, "relevance_score": s, "document": {"text": docs[i]}} for i, s in rows
                    ],
                    "usage": {"total_tokens": 10},
                },
            )

        def _tei(self, body: dict[str, Any], step: Step) -> None:
            texts = list(body.get("texts") or [])
            if len(texts) > 32:
                self._json(
                    413,
                    {
                        "error": f"batch size {len(texts)} > maximum allowed batch size 32",
                        "error_type": "Validation",
                    },
                )
                return
            self._json(
                200,
                [{"index": i, "score": s} for i, s in self._scores(str(body.get("query", "")), texts, step)],
            )

    return Handler
