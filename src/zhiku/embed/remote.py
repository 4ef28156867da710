"""Embedding servers as embedders: Ollama (``/api/embed``) and OpenAI-compatible (``/embeddings``).

A user with bge-m3 in Ollama (``ollama pull bge-m3``) gets good Chinese dense retrieval without zhiku
downloading anything::

    [methods.m3]
    kind = "dense"
    options = { embedder = "ollama", model = "bge-m3" }

The server pools the vectors its own way; zhiku L2-normalises them, batches the texts and retries
(embedding is idempotent, so a dropped connection or 502/503/504 is retried too). The dimension is
learnt from the server on first use. Base URL and key come from the method's options (kind
``remote``, see ``retrieve/llm_dense.py``) or from the same environment variables as the chat
backends.

Several servers. ``urls = ["http://gpu-a:8080/v1", "http://gpu-b:8080/v1"]`` (replacing
``base_url``) sends the batches of one build to all of them at once: one thread per server takes
the next batch as soon as its previous one is answered, so a faster server simply does more. A
server that still fails after its own retries is left out for the rest of the build and its batch
goes to another; the build fails only when every server has failed (each batch is tried at most
once per server). All the servers must serve the same model: their vectors share one index.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zhiku.embed.base import Embedder, _batches, embedders, l2_normalize


class RemoteEmbedder(Embedder):
    def __init__(
        self,
        model: str = "",
        base_url: str | None = None,
        api_key_env: str | None = None,
        batch_size: int = 32,
        timeout: float = 60.0,
        retries: int = 3,
        languages: Sequence[str] | None = None,
        query_prefix: str = "",
        doc_prefix: str = "",
        dim: int | None = None,
        urls: Sequence[str] | None = None,
        **_: Any,
    ) -> None:
        from zhiku.errors import ConfigError

        if not model:
            raise ConfigError(
                f"the {self.name} embedder needs a model name", "Set options.model, e.g. model = 'bge-m3'"
            )
        self.model = model
        self.model_id = f"{self.name}:{model}"
        self.batch_size = batch_size
        self.query_prefix, self.doc_prefix = query_prefix, doc_prefix
        if languages:
            self.languages = frozenset(languages)
        self._dim = dim
        if urls is not None and (isinstance(urls, str) or not all(isinstance(u, str) for u in urls)):
            raise ConfigError(
                f"urls = {urls!r} is not a list of server addresses",
                'Write urls = ["http://host-a:8080/v1", "http://host-b:8080/v1"], or use base_url for one',
            )
        addresses = list(urls) if urls else [base_url]
        self._clients = [self.make_client(model, u, api_key_env, timeout, retries) for u in addresses]
        self._client = self._clients[0]

    def make_client(
        self, model: str, base_url: str | None, api_key_env: str | None, timeout: float, retries: int
    ) -> Any:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """Learnt from the server on first use (one tiny request), unless given."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    @dim.setter
    def dim(self, value: int) -> None:
        self._dim = value

    def _request(self, texts: Sequence[str], client: Any = None) -> np.ndarray:
        client = client or self._client
        # Servers reject empty input ("'$.input' is invalid"); a space embeds as "nothing".
        rows = client.embed([t if t.strip() else " " for t in texts])
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            matrix = np.zeros((0,), np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(texts) or matrix.shape[1] == 0:
            raise client.http.error(
                f"asked for {len(texts)} embeddings, got an unusable answer (shape {matrix.shape})",
                self._client.http.hints.protocol,
            )
        if self._dim is not None and matrix.shape[1] != self._dim:
            raise client.http.error(
                f"the model returned {matrix.shape[1]}-dimensional vectors, the index holds {self._dim}",
                "The model behind this name changed: rebuild with `zhiku build --force --method NAME`",
            )
        return l2_normalize(matrix)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._request([self.doc_prefix + t for t in texts])

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """With several servers, batches go to all of them concurrently (see the module docstring)."""
        if len(self._clients) == 1 or len(texts) <= self.batch_size:
            return super().embed(texts, progress)
        from zhiku.errors import ZhikuError

        batches = [[self.doc_prefix + t for t in b] for b in _batches(texts, self.batch_size)]
        todo: queue.Queue[tuple[int, set[int]]] = queue.Queue()
        for i in range(len(batches)):
            todo.put((i, set()))
        done: queue.Queue[tuple[int, np.ndarray | None, BaseException | None]] = queue.Queue()
        alive = set(range(len(self._clients)))
        lock = threading.Lock()
        stop = threading.Event()

        def serve(k: int) -> None:
            while not stop.is_set():
                try:
                    i, tried = todo.get(timeout=0.05)
                except queue.Empty:
                    continue  # a failed batch may still come back to this server
                try:
                    done.put((i, self._request(batches[i], self._clients[k]), None))
                except ZhikuError as e:
                    tried.add(k)
                    with lock:
                        alive.discard(k)
                        others = alive - tried
                    if others:
                        todo.put((i, tried))  # another server takes it
                    else:
                        done.put((i, None, e))
                    return  # this server is left out from now on

        threads = [threading.Thread(target=serve, args=(k,), daemon=True) for k in range(len(self._clients))]
        for t in threads:
            t.start()
        rows: list[np.ndarray | None] = [None] * len(batches)
        try:
            for _ in range(len(batches)):
                i, matrix, error = done.get()
                if error is not None:
                    raise error
                rows[i] = matrix
                if progress:
                    progress(len(batches[i]))
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)
        return np.vstack([r for r in rows if r is not None])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack(
            [
                self._request([self.query_prefix + t for t in texts[i : i + self.batch_size]])
                for i in range(0, len(texts), self.batch_size)
            ]
        )


class OllamaEmbedder(RemoteEmbedder):
    name = "ollama"

    def make_client(
        self, model: str, base_url: str | None, api_key_env: str | None, timeout: float, retries: int
    ) -> Any:
        from zhiku.generate.ollama import OllamaClient

        return OllamaClient(model, base_url, timeout, retries)


class OpenAIEmbedder(RemoteEmbedder):
    name = "openai"

    def make_client(
        self, model: str, base_url: str | None, api_key_env: str | None, timeout: float, retries: int
    ) -> Any:
        from zhiku.generate.openai_compat import OpenAIClient

        return OpenAIClient(model, base_url, None, api_key_env, timeout, retries)


embedders.add("ollama", OllamaEmbedder)
embedders.add("openai", OpenAIEmbedder)
