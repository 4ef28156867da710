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

The API key is read from the environment variable ``api_key_env`` names (never from zhiku.toml),
sent in the ``Authorization`` header only, and removed from any text a server echoes back; it is
in no message and no ``repr``. Scoring is idempotent, so a refused connection and 429/502/503/504
are retried (``retries``, with backoff, honouring a short ``Retry-After``); a timeout is not: a
server that is too slow once is slow again, and the user should hear so after one wait, not three.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from zhiku.errors import BackendError, ConfigError, DependencyMissingError
from zhiku.generate.http import redact, server_message
from zhiku.retrieve.rerank.base import Reranker, RerankOptions, rerankers

_RETRY_STATUS = (429, 502, 503, 504)
_MAX_RETRY_AFTER_S = 10.0


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
        self.base_url = options.base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"remote reranker: base URL {options.base_url!r} is not an http(s) URL",
                "Set [rerank.options] base_url, or use --rerank remote:http://HOST:PORT",
            )
        if options.api == "tei":
            self.url = self.base_url + "/rerank"
        elif parts.path.rstrip("/").endswith(("/v1", "/v2")):
            self.url = self.base_url + "/rerank"
        else:
            self.url = self.base_url + "/v1/rerank"
        self.model_id = f"{options.api}:{options.model or self.base_url}"
        self._key = _api_key(options.api_key_env)
        self._client: Any = None

    def describe(self) -> str:
        return f"remote:{self.model_id}"

    def __repr__(self) -> str:  # the key is deliberately absent
        return f"RemoteReranker(api={self.options.api!r}, url={self.url!r}, model={self.options.model!r})"

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(passages), self.batch_size):
            out += self._request(query, list(passages[i : i + self.batch_size]))
        return out

    # -- one request ----------------------------------------------------------------------------------
    def _body(self, query: str, passages: list[str]) -> dict[str, Any]:
        if self.options.api == "tei":
            return {"query": query, "texts": passages, "truncate": self.options.truncate}
        body: dict[str, Any] = {"query": query, "documents": passages, "top_n": len(passages)}
        if self.options.model:
            body["model"] = self.options.model
        return body

    def _request(self, query: str, passages: list[str]) -> list[float]:
        httpx = _httpx()
        client = self._http(httpx)
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = client.post(self.url, json=self._body(query, passages), headers=headers)
            except httpx.ConnectError as e:
                if attempt <= self.options.retries:
                    self._sleep(attempt, None)
                    continue
                raise self._error(
                    f"cannot connect ({e.__class__.__name__})",
                    "Is the rerank server running, and is base_url right?",
                ) from e
            except httpx.TimeoutException as e:
                raise self._error(
                    f"no answer within {self.options.timeout:g}s",
                    "The server may be busy or still loading: raise [rerank.options] timeout, or rerank "
                    "fewer candidates ([rerank] top_n)",
                ) from e
            except httpx.HTTPError as e:
                raise self._error(f"the request failed ({e.__class__.__name__}: {e})", _HINT_SERVER) from e
            if resp.status_code in _RETRY_STATUS and attempt <= self.options.retries:
                self._sleep(attempt, resp.headers.get("Retry-After"))
                continue
            return self._parse(resp, len(passages))

    def _parse(self, resp: Any, n: int) -> list[float]:
        if resp.status_code != 200:
            raise self._status_error(resp)
        try:
            data = resp.json()
        except ValueError as e:
            sample = resp.text[:80]
            raise self._error(f"the answer is not JSON (starts with {sample!r})", _HINT_PROTOCOL) from e
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

    # -- plumbing ---------------------------------------------------------------------------------------
    def _http(self, httpx: Any) -> Any:
        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.options.timeout, connect=min(10.0, self.options.timeout))
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = 0.25 * 2 ** (attempt - 1)
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                pass
        time.sleep(min(max(delay, 0.0), _MAX_RETRY_AFTER_S))

    def _error(self, what: str, hint: str) -> BackendError:
        return BackendError(f"rerank server at {self.url}: {redact(what, (self._key or '',))}", hint)

    def _status_error(self, resp: Any) -> BackendError:
        try:
            message = server_message(resp.json()) or resp.text[:200]
        except ValueError:
            message = resp.text[:200]
        detail = f"HTTP {resp.status_code}" + (f": {' '.join(message.split())}" if message.strip() else "")
        status = resp.status_code
        if status in (401, 403):
            hint = (
                f"Check the API key in ${self.options.api_key_env}"
                if self.options.api_key_env
                else (
                    "The server wants a key: set [rerank.options] api_key_env to the variable that holds it"
                )
            )
            return self._error(f"the API key was refused ({detail})", hint)
        if status == 404:
            other = "tei" if self.options.api == "cohere" else "cohere"
            return self._error(
                f"not found ({detail})",
                f"Check base_url and model; if the server speaks the other API, set api = '{other}'",
            )
        if status in _RETRY_STATUS:
            return self._error(f"the server is overloaded ({detail})", "Wait a little and try again")
        if status >= 500:
            return self._error(f"server error ({detail})", _HINT_SERVER)
        return self._error(f"the request was rejected ({detail})", _HINT_PROTOCOL)


_HINT_SERVER = "Check the rerank server's log"
_HINT_PROTOCOL = "Check that base_url points at a rerank server and that api (cohere or tei) matches it"


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


def _httpx() -> Any:
    try:
        import httpx2
    except ImportError as e:
        raise DependencyMissingError(
            "the remote reranker needs the httpx2 package", "pip install 'zhiku[rerank]' (or httpx2)"
        ) from e
    return httpx2


rerankers.add("remote", RemoteReranker)
