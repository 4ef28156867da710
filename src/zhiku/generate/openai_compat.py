"""Any OpenAI-compatible server: ``/chat/completions`` (SSE streaming), ``/embeddings``, ``/models``.

That covers OpenAI itself, DeepSeek, Qwen/DashScope compatible mode, vLLM, llama.cpp's server,
LM Studio, Xinference… The base URL includes the API version (``https://api.openai.com/v1``,
``http://127.0.0.1:8000/v1``) as in OpenAI's own clients.

Where settings come from, first found wins:
- base URL: the option (``--base-url``), ``ZHIKU_OPENAI_BASE_URL``, ``OPENAI_BASE_URL``, OpenAI's URL;
- API key: the variable named by ``api_key_env``, the ``api_key`` option, ``ZHIKU_OPENAI_API_KEY``,
  ``OPENAI_API_KEY``; none at all is fine for a local server that does not check keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from zhiku.errors import ConfigError
from zhiku.generate.llm import ChatBackend, LLMOptions, Message, register_backend
from zhiku.generate.server import Hints, Server, StatusFailure, server_message

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENVS = ("ZHIKU_OPENAI_BASE_URL", "OPENAI_BASE_URL")
API_KEY_ENVS = ("ZHIKU_OPENAI_API_KEY", "OPENAI_API_KEY")
T = TypeVar("T")


def openai_settings(
    base_url: str | None, api_key: str | None, api_key_env: str | None
) -> tuple[str, str | None]:
    url = base_url or next((os.environ[v] for v in BASE_URL_ENVS if os.environ.get(v)), DEFAULT_BASE_URL)
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(
                f"the environment variable {api_key_env} (api_key_env) is not set",
                f"export {api_key_env}=… with your API key, or remove api_key_env",
            )
        return url, key
    key = api_key or next((os.environ[v] for v in API_KEY_ENVS if os.environ.get(v)), None)
    return url, key


class OpenAIClient:
    """The three endpoints zhiku uses, through the official ``openai`` client; shared by the chat
    backend and the embedder.

    The openai client's own retries are off (``max_retries=0``): it re-sends a chat after a timeout
    or a 500, which ``server.py``'s policy forbids. Its exceptions are translated there into one-line
    errors with hints; an error response is never chained (a server may echo the key back).
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        retries: int = 2,
    ) -> None:
        import openai

        self.model = model
        url, key = openai_settings(base_url, api_key, api_key_env)
        key_hint = f"Set {api_key_env}" if api_key_env else "Set OPENAI_API_KEY (or ZHIKU_OPENAI_API_KEY)"
        version_hint = (
            ""
            if url.rstrip("/").endswith(("/v1", "/v1beta", "/v3"))
            else ("; OpenAI-compatible base URLs usually end in /v1")
        )
        self.http = Server(
            "openai-compatible server",
            url,
            api_key=key,
            timeout=timeout,
            retries=retries,
            hints=Hints(
                connect=(
                    "Is the server running and the base URL right? Pass --base-url or set OPENAI_BASE_URL "
                    "(vLLM: http://127.0.0.1:8000/v1)"
                ),
                auth=f"{key_hint} to a valid key for this server",
                not_found=(
                    f"Check the model name {model!r} (see the server's /models list) and the base URL"
                    f"{version_hint}"
                ),
                timeout="The server is slow or overloaded: try again, or raise [generator.options] timeout",
                server="The server failed: see its log or status page, and try again",
                protocol=(
                    f"Check the request options and that the base URL speaks the OpenAI API{version_hint}"
                ),
            ),
        )
        self._openai = openai.OpenAI(
            base_url=self.http.base_url,
            # A local server without keys: the client insists on one, but it is never sent (below).
            api_key=key or "no-key",
            max_retries=0,
            timeout=self.http.client.timeout,
            http_client=self.http.client,
        )
        self._headers: dict[str, Any] = {} if key else {"Authorization": openai.Omit()}

    def __repr__(self) -> str:
        return f"OpenAIClient({self.model!r}, {self.http.base_url!r})"

    def _call(self, send: Callable[[], T], idempotent: bool) -> T:
        """``send()`` through the retry policy, with the openai client's status errors made plain."""
        import openai

        def attempt() -> T:
            try:
                return send()
            except openai.APIStatusError as e:
                raise StatusFailure(
                    e.status_code, _text(e.response), e.response.headers.get("Retry-After")
                ) from None

        return self.http.call(attempt, idempotent=idempotent)

    def chat(
        self, messages: Sequence[Message], max_tokens: int, temperature: float, extra: dict[str, Any]
    ) -> Iterator[str]:
        import openai

        ours = {"model", "messages", "stream", "max_tokens", "temperature"}

        def create() -> openai.Stream[ChatCompletionChunk]:
            return self._openai.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", list(messages)),
                stream=True,
                max_tokens=max_tokens,
                temperature=temperature,
                # zhiku's own fields win over [generator.options] extra, as before
                extra_body={k: v for k, v in extra.items() if k not in ours} or None,
                extra_headers=self._headers,
            )

        stream = self._call(create, idempotent=False)
        kind = stream.response.headers.get("content-type", "")
        if "event-stream" not in kind:
            yield self._whole_response(stream.response, kind)
            return
        finished = False
        try:
            for chunk in stream:
                if not chunk.choices:
                    continue  # e.g. the usage summary some servers send last
                choice = chunk.choices[0]
                finished = finished or bool(choice.finish_reason)
                if choice.delta and choice.delta.content:
                    yield choice.delta.content
        except openai.APIConnectionError as e:  # APITimeoutError included
            raise self.http.broken_stream(e) from e
        except openai.APIError as e:  # an error event in the stream
            raise self.http.reported_error(server_message({"error": e.body}) or e.message) from None
        except json.JSONDecodeError as e:
            raise self.http.error(
                f"malformed stream: an event is not JSON ({e.doc[:60]!r})", self.http.hints.protocol
            ) from None
        except (ValueError, TypeError, AttributeError):  # JSON, but not a chunk (pydantic says which)
            raise self.http.error(
                "malformed stream: an event is not a chat completion chunk", self.http.hints.protocol
            ) from None
        finally:
            stream.close()
        if not finished:
            raise self.http.error("the stream ended before the answer was complete", self.http.hints.server)

    def _whole_response(self, response: Any, kind: str) -> str:
        """A server that ignored ``stream`` answers with one JSON body; anything else is no stream."""
        try:
            body = _text(response)
        except Exception as e:  # noqa: BLE001  a read failure of the body: same as a broken stream
            raise self.http.broken_stream(e) from e
        finally:
            response.close()
        if "json" not in kind:
            first = next((line for line in body.splitlines() if line.strip()), body)
            raise self.http.error(
                f"malformed stream: the response is not an event stream ({first[:60]!r})",
                self.http.hints.protocol,
            )
        try:
            obj = json.loads(body)
            if obj.get("error"):
                raise self.http.reported_error(server_message(obj))
            return str(obj["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise self.http.error(f"malformed response ({body[:60]!r})", self.http.hints.protocol) from None

    def _json(self, raw: Any, path: str) -> Any:
        """The JSON body of a non-streamed response (``with_raw_response``).

        Read as plain JSON, not parsed into the client's typed models: those build a pydantic object
        per vector element, which made a batch of 32 embeddings of 1024 floats ~8x slower.
        """
        content = raw.http_response.content
        if "json" not in raw.headers.get("content-type", ""):
            raise self.http.not_json(path, content)
        try:
            return json.loads(content)
        except ValueError as e:
            raise self.http.not_json(path, content) from e

    def models(self) -> list[str]:
        raw = self._call(
            lambda: self._openai.models.with_raw_response.list(extra_headers=self._headers), idempotent=True
        )
        data = self._json(raw, "/models")
        return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raw = self._call(
            lambda: self._openai.embeddings.with_raw_response.create(
                model=self.model, input=list(texts), encoding_format="float", extra_headers=self._headers
            ),
            idempotent=True,
        )
        data = self._json(raw, "/embeddings")
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise self.http.error("/embeddings returned no 'data'", self.http.hints.protocol)
        rows = sorted(rows, key=lambda r: r.get("index", 0))
        return [r.get("embedding") for r in rows]


def _text(response: Any) -> str:
    response.read()
    return str(response.text)


@register_backend
class OpenAIBackend(ChatBackend):
    kind = "openai"
    # Conservative: hosted models have far larger windows; set context_window to use them.
    default_window = 8192

    def __init__(self, options: LLMOptions) -> None:
        super().__init__(options)
        self.client = OpenAIClient(
            options.model,
            options.base_url,
            options.key(),
            options.api_key_env,
            options.timeout,
            options.retries,
        )

    def chat(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> Iterator[str]:
        return self.client.chat(messages, max_tokens, temperature, dict(self.options.extra))

    def models(self) -> list[str]:
        return self.client.models()
