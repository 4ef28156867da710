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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zhiku.embed.base import Embedder, embedders, l2_normalize


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
        self._client = self.make_client(model, base_url, api_key_env, timeout, retries)

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

    def _request(self, texts: Sequence[str]) -> np.ndarray:
        # Servers reject empty input ("'$.input' is invalid"); a space embeds as "nothing".
        rows = self._client.embed([t if t.strip() else " " for t in texts])
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            matrix = np.zeros((0,), np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(texts) or matrix.shape[1] == 0:
            raise self._client.http.error(
                f"asked for {len(texts)} embeddings, got an unusable answer (shape {matrix.shape})",
                self._client.http.hints.protocol,
            )
        if self._dim is not None and matrix.shape[1] != self._dim:
            raise self._client.http.error(
                f"the model returned {matrix.shape[1]}-dimensional vectors, the index holds {self._dim}",
                "The model behind this name changed: rebuild with `zhiku build --force --method NAME`",
            )
        return l2_normalize(matrix)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._request([self.doc_prefix + t for t in texts])

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
