"""A Qdrant server stand-in on a loopback port: the REST calls the qdrant index makes, answered in
Qdrant's wire format (``{"result": …, "status": "ok", "time": …}``), with exact numpy search.

Real qdrant-client talks to it over real HTTP, so the server code path of zhiku/index/qdrant.py
(URL, API key header, HNSW settings in the collection, ``hnsw_ef`` per query, real deletes) is
exercised without a Qdrant binary, which PyPI does not ship. Everything it was sent is recorded.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


@dataclass
class Collection:
    config: dict[str, Any]
    points: dict[str, tuple[np.ndarray, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class FakeQdrant:
    url: str = ""
    collections: dict[str, Collection] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)

    def search(self, name: str, query: Any, limit: int) -> list[dict[str, Any]]:
        c = self.collections[name]
        if not c.points:
            return []
        ids = list(c.points)
        x = np.stack([c.points[i][0] for i in ids])
        if isinstance(query, dict):  # the client sends a plain vector as {"nearest": [...]}
            query = query["nearest"]
        q = np.asarray(query, dtype=np.float64)
        if c.config["vectors"]["distance"] == "Euclid":
            score = np.sqrt(((x - q) ** 2).sum(1))
            order = np.argsort(score, kind="stable")
        else:
            score = x @ q
            order = np.argsort(-score, kind="stable")
        return [
            {"id": ids[j], "version": 0, "score": float(score[j]), "payload": c.points[ids[j]][1]}
            for j in order[:limit]
        ]


def _handler(state: FakeQdrant) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _reply(self, result: Any, status: int = 200) -> None:
            body = json.dumps({"result": result, "status": "ok", "time": 0.0}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body: Any = json.loads(self.rfile.read(length)) if length else None
            path = self.path.split("?")[0]
            state.requests.append((method, path, dict(self.headers), body))
            if path == "/":
                return self._reply_raw({"title": "qdrant - vector search engine", "version": "1.20.0"})
            if path == "/collections":
                return self._reply({"collections": [{"name": n} for n in state.collections]})
            m = re.fullmatch(r"/collections/([^/]+)(/.*)?", path)
            if not m:
                return self._reply({"error": "not found"}, 404)
            name, rest = m.group(1), m.group(2) or ""
            if rest == "/exists":
                return self._reply({"exists": name in state.collections})
            if rest == "" and method == "PUT":
                state.collections[name] = Collection(body)
                return self._reply(True)
            if rest == "" and method == "DELETE":
                return self._reply(state.collections.pop(name, None) is not None)
            c = state.collections[name]
            if rest == "/points" and method == "PUT":
                batch = body["batch"]
                for pid, vec, payload in zip(batch["ids"], batch["vectors"], batch["payloads"], strict=True):
                    c.points[pid] = (np.asarray(vec, dtype=np.float64), payload)
                return self._reply({"operation_id": 0, "status": "completed"})
            if rest == "/points/delete":
                for pid in body["points"]:
                    c.points.pop(pid, None)
                return self._reply({"operation_id": 1, "status": "completed"})
            if rest == "/points/count":
                return self._reply({"count": len(c.points)})
            if rest == "/points/query/batch":
                return self._reply(
                    [{"points": state.search(name, s["query"], s["limit"])} for s in body["searches"]]
                )
            return self._reply({"error": f"unexpected {method} {path}"}, 404)

        def _reply_raw(self, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._handle("GET")

        def do_PUT(self) -> None:  # noqa: N802
            self._handle("PUT")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._handle("DELETE")

    return Handler


@contextmanager
def fake_qdrant() -> Iterator[FakeQdrant]:
    state = FakeQdrant()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
