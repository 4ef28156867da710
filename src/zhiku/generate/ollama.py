"""Ollama's native HTTP API: ``/api/chat`` (streamed NDJSON), ``/api/tags``, ``/api/embed``.

The base URL is the option, else ``ZHIKU_OLLAMA_BASE_URL``, else Ollama's own ``OLLAMA_HOST``, else
``http://127.0.0.1:11434``. zhiku sends ``num_ctx`` (the window it packs for) and ``num_predict``
(the answer reserve) so Ollama does not silently cut a prompt that zhiku believed fits.

Spoken through ``httpx2``, the HTTP library the openai client runs on (one HTTP stack for every
backend), with the error wording and retry policy of ``server.py``. The ``ollama`` package is not
used: it brings the older ``httpx`` as a second stack, and its errors (``ResponseError`` with a
status and a string) would still need the same translation into hints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

from zhiku.generate.llm import ChatBackend, LLMOptions, Message, register_backend
from zhiku.generate.server import Hints, Server, server_message

DEFAULT_BASE_URL = "http://127.0.0.1:11434"


def ollama_base_url(explicit: str | None = None) -> str:
    url = (
        explicit
        or os.environ.get("ZHIKU_OLLAMA_BASE_URL")
        or os.environ.get("OLLAMA_HOST")
        or DEFAULT_BASE_URL
    )
    if "://" not in url:  # OLLAMA_HOST is often "0.0.0.0:11434" or "host:port"
        url = "http://" + url
    # 0.0.0.0 is where a server listens, not an address to connect to.
    return url.replace("://0.0.0.0", "://127.0.0.1").rstrip("/")


class OllamaClient:
    """The three endpoints zhiku uses; shared by the chat backend and the embedder."""

    def __init__(
        self, model: str, base_url: str | None = None, timeout: float = 120.0, retries: int = 2
    ) -> None:
        self.model = model
        url = ollama_base_url(base_url)
        self.http = Server(
            "ollama",
            url,
            timeout=timeout,
            retries=retries,
            hints=Hints(
                connect=(
                    "Is Ollama running? Start it with `ollama serve` (or the desktop app), or pass --base-url"
                ),
                not_found=(
                    f"Pull the model with `ollama pull {model}`, or pick an installed one from `ollama list` "
                    "(embeddings need Ollama 0.3.4 or later)"
                ),
                timeout=(
                    "Ollama may still be loading the model (the first call after a while is slow): try "
                    "again, or raise [generator.options] timeout"
                ),
                context=(
                    "The prompt is longer than the model's window: ask with a smaller -k, or raise "
                    "[generator.options] context_window (num_ctx) if the model supports it"
                ),
                server="See Ollama's log (`journalctl -u ollama` or ~/.ollama/logs/server.log)",
                protocol=(
                    f"Check that {url} is an Ollama server (the OpenAI-compatible API is --llm openai:…)"
                ),
            ),
        )

    def chat(
        self, messages: Sequence[Message], options: dict[str, Any], extra: dict[str, Any]
    ) -> Iterator[str]:
        body = {
            **extra,
            "model": self.model,
            "messages": list(messages),
            "stream": True,
            "options": {**options, **extra.get("options", {})},
        }
        done = False
        for n, line in enumerate(self.http.stream_lines("/api/chat", body), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                raise self.http.error(
                    f"malformed stream: line {n} is not JSON ({line[:60]!r})", self.http.hints.protocol
                ) from None
            if not isinstance(event, dict):
                raise self.http.error(
                    f"malformed stream: line {n} is not an object", self.http.hints.protocol
                )
            if "error" in event:
                raise self.http.reported_error(server_message(event) or line[:200])
            piece = (event.get("message") or {}).get("content") or ""
            if piece:
                yield piece
            if event.get("done"):
                done = True
                break
        if not done:
            raise self.http.error("the stream ended before the answer was complete", self.http.hints.server)

    def models(self) -> list[str]:
        data = self.http.get_json("/api/tags")
        return [str(m.get("name") or m.get("model")) for m in data.get("models", []) if isinstance(m, dict)]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        data = self.http.post_json(
            "/api/embed", {"model": self.model, "input": list(texts), "truncate": True}, idempotent=True
        )
        vectors = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(vectors, list):
            raise self.http.error("/api/embed returned no 'embeddings'", self.http.hints.protocol)
        return vectors


@register_backend
class OllamaBackend(ChatBackend):
    kind = "ollama"
    # Ollama's own default num_ctx; a model's real window is often larger (set context_window).
    default_window = 4096

    def __init__(self, options: LLMOptions) -> None:
        super().__init__(options)
        self.client = OllamaClient(options.model, options.base_url, options.timeout, options.retries)

    def chat(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> Iterator[str]:
        opts = {"temperature": temperature, "num_predict": max_tokens, "num_ctx": self.context_window()}
        return self.client.chat(messages, opts, dict(self.options.extra))

    def models(self) -> list[str]:
        return self.client.models()
