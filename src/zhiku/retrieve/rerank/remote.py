"""``remote``: the rerank HTTP APIs users already run, over ``httpx2``.

Two wire formats (``api`` option):

- ``cohere`` — ``POST {base}/v1/rerank`` with ``{"model", "query", "documents", "top_n"}``, answered
  by ``{"results": [{"index", "relevance_score"}]}``: Cohere, Jina, vLLM (``vllm serve
  BAAI/bge-reranker-v2-m3``), Xinference. A base URL that already ends in ``/v1`` (as OpenAI-style
  URLs do) gets ``/rerank`` only;
- ``tei`` — Hugging Face text-embeddings-inference: ``POST {base}/rerank`` with ``{"query",
  "texts", "truncate"}``, answered by ``[{"index", "score"}]``.

::

    [rerank]
    kind = "remote"
    options = { api = "cohere", base_url = "http://127.0.0.1:8000", model = "BAAI/bge-reranker-v2-m3" }

The HTTP stack and its policy are the LLM backends' (``generate/server.py``, over ``httpx2``): errors
that say what to check, proxies honoured except for this machine, and retries only where safe —
scoring is idempotent, so a refused connection and 429/502/503/504 are retried (``retries``,
honouring ``Retry-After``); a timeout is not: a server too slow once is slow again, and the user
should hear so after one wait, not three. The API key is read from the environment variable
``api_key_env`` names (never from zhiku.toml), sent in the ``Authorization`` header only, and
removed from any text a server echoes back; it is in no message and no ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from zhiku.errors import BackendError, ConfigError
from zhiku.generate.server import Hints, Server
from zhiku.retrieve.rerank.base import Reranker, RerankOptions, rerankers

_HINT_PROTOCOL = "Check that base_url points at a rerank server and that api (cohere or tei) matches it"


class RemoteOptions(RerankOptions):
    api: Literal["cohere", "tei"] = Field("cohere", description="cohere: POST /v1/rerank; tei: POST /rerank")
    base_url: str = Field("", description="the server, e.g. http://127.0.0.1:8000")
    model: str = Field("", description="the model name the server knows (cohere API; TEI serves one model)")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    timeout: float = Field(30.0, gt=0, description="seconds to wait for one request")
    retries: int = Field(2, ge=0, description="retries after a refused connection or 429/502/503/504")
    batch_size: int = Field(32, ge=1, description="passages per request (TEI's default limit is 32)")
    truncate: bool = Field(True, description="tei: let the server cut pairs longer than its window")


class RemoteReranker(Reranker):
    name = "remote"
    Options = RemoteOptions
    spec_field: ClassVar[str | None] = "base_url"

    def __init__(self, options: RemoteOptions) -> None:
        self.options = options
        self.batch_size = options.batch_size
        base = options.base_url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"remote reranker: base URL {options.base_url!r} is not an http(s) URL",
                "Set [rerank.options] base_url, or use --rerank remote:http://HOST:PORT",
            )
        if options.api == "tei" or parts.path.rstrip("/").endswith(("/v1", "/v2")):
            self.path = "/rerank"
        else:
            self.path = "/v1/rerank"
        self.model_id = f"{options.api}:{options.model or base}"
        key = _api_key(options.api_key_env)
        other = "tei" if options.api == "cohere" else "cohere"
        self.http = Server(
            f"rerank server ({options.api} API)",
            base,
            api_key=key,
            timeout=options.timeout,
            retries=options.retries,
            backoff=0.25,
            hints=Hints(
                connect="Is the rerank server running, and is base_url right?",
                timeout="The server may be busy or still loading: raise [rerank.options] timeout, or rerank "
                "fewer candidates ([rerank] top_n)",
                auth=f"Check the API key in ${options.api_key_env}"
                if options.api_key_env
                else "The server wants a key: set [rerank.options] api_key_env to the variable holding it",
                not_found=f"Check base_url and model, or try api = '{other}'",
                server="Check the rerank server's log",
                protocol=_HINT_PROTOCOL,
                extra={413: "The server caps the documents per request: lower [rerank.options] batch_size"},
            ),
        )
        if key:
            self.http.client.headers["Authorization"] = f"Bearer {key}"

    def describe(self) -> str:
        return f"remote:{self.model_id}"

    def __repr__(self) -> str:  # the key is deliberately absent
        return f"RemoteReranker(api={self.options.api!r}, url={self.http.base_url + self.path!r})"

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(passages), self.batch_size):
            part = list(passages[i : i + self.batch_size])
            out += self._parse(
                self.http.post_json(self.path, self._body(query, part), idempotent=True), len(part)
            )
        return out

    def _body(self, query: str, passages: list[str]) -> dict[str, Any]:
        if self.options.api == "tei":
            return {"query": query, "texts": passages, "truncate": self.options.truncate}
        body: dict[str, Any] = {"query": query, "documents": passages, "top_n": len(passages)}
        if self.options.model:
            body["model"] = self.options.model
        return body

    def _parse(self, data: Any, n: int) -> list[float]:
        """Scores in the passages' order: servers sort their results by score, so map by index."""
        key = "score" if self.options.api == "tei" else "relevance_score"
        rows = (
            data if self.options.api == "tei" else (data.get("results") if isinstance(data, dict) else None)
        )
        scores: dict[int, float] = {}
        count = 0
        try:
            for row in rows:  # type: ignore[union-attr]
                scores[int(row["index"])] = float(row[key])
                count += 1
        except (TypeError, KeyError, ValueError) as e:
            shape = (
                '[{"index", "score"}]'
                if self.options.api == "tei"
                else '{"results": [{"index", "relevance_score"}]}'
            )
            raise self._error(
                f"the answer is not in the {self.options.api} format {shape}", _HINT_PROTOCOL
            ) from e
        if count != n or sorted(scores) != list(range(n)):
            got = f"{count} results" if count != n else f"results for indexes {sorted(scores)[:8]}"
            raise self._error(
                f"asked to score {n} passages, got {got}",
                "The server may cap the documents per request: lower [rerank.options] batch_size",
            )
        return [scores[i] for i in range(n)]

    def _error(self, what: str, hint: str) -> BackendError:
        return self.http.error(what, hint)


def _api_key(env: str | None) -> str | None:
    if not env:
        return None
    key = os.environ.get(env, "").strip()
    if not key:
        raise ConfigError(
            f"remote reranker: the environment variable {env} (api_key_env) is not set",
            f"export {env}=… before running zhiku, or drop api_key_env for a server without keys",
        )
    return key


rerankers.add("remote", RemoteReranker)
