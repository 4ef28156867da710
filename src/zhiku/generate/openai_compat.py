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
from collections.abc import Iterator, Sequence
from typing import Any

from zhiku.errors import ConfigError
from zhiku.generate.http import Hints, HttpClient, server_message
from zhiku.generate.llm import ChatBackend, LLMOptions, Message, register_backend

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENVS = ("ZHIKU_OPENAI_BASE_URL", "OPENAI_BASE_URL")
API_KEY_ENVS = ("ZHIKU_OPENAI_API_KEY", "OPENAI_API_KEY")


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
    """The three endpoints zhiku uses; shared by the chat backend and the embedder."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        retries: int = 2,
    ) -> None:
        self.model = model
        url, key = openai_settings(base_url, api_key, api_key_env)
        key_hint = f"Set {api_key_env}" if api_key_env else "Set OPENAI_API_KEY (or ZHIKU_OPENAI_API_KEY)"
        version_hint = (
            ""
            if url.rstrip("/").endswith(("/v1", "/v1beta", "/v3"))
            else ("; OpenAI-compatible base URLs usually end in /v1")
        )
        self.http = HttpClient(
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

    def chat(
        self, messages: Sequence[Message], max_tokens: int, temperature: float, extra: dict[str, Any]
    ) -> Iterator[str]:
        body = {
            **extra,
            "model": self.model,
            "messages": list(messages),
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        finished = seen = False
        junk = ""  # the first line that is no part of an event stream
        plain: list[str] = []  # a server that ignored "stream" and answered with one JSON body
        for line in self.http.stream_lines("/chat/completions", body):
            if plain or (not seen and line.startswith("{")):
                plain.append(line)
                continue
            # One JSON object per `data:` line, as every LLM server sends them; comments
            # (": keep-alive"), `event:`/`id:` fields and the blank separators carry nothing.
            if not line.startswith("data:"):
                if line.strip() and not line.startswith((":", "event:", "id:", "retry:")):
                    junk = junk or line
                continue
            seen = True
            event = line[5:].strip()
            if event == "[DONE]":
                finished = True
                break
            if not event:
                continue
            piece, done = self._parse_event(event)
            finished = finished or done
            if piece:
                yield piece
        if plain:
            yield self._parse_whole("\n".join(plain))
            return
        if not seen and junk:
            raise self.http.error(
                f"malformed stream: the response is not an event stream ({junk[:60]!r})",
                self.http.hints.protocol,
            )
        if not finished:
            raise self.http.error("the stream ended before the answer was complete", self.http.hints.server)

    def _parse_event(self, event: str) -> tuple[str, bool]:
        try:
            obj = json.loads(event)
        except ValueError:
            raise self.http.error(
                f"malformed stream: an event is not JSON ({event[:60]!r})", self.http.hints.protocol
            ) from None
        if not isinstance(obj, dict):
            raise self.http.error("malformed stream: an event is not an object", self.http.hints.protocol)
        if obj.get("error"):
            raise self.http.reported_error(server_message(obj) or event[:200])
        choices = obj.get("choices") or []
        if not choices:
            return "", False  # e.g. the usage summary some servers send last
        choice = choices[0] if isinstance(choices[0], dict) else {}
        delta = choice.get("delta") or {}
        return str(delta.get("content") or ""), bool(choice.get("finish_reason"))

    def _parse_whole(self, body: str) -> str:
        try:
            obj = json.loads(body)
            if obj.get("error"):
                raise self.http.reported_error(server_message(obj))
            return str(obj["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise self.http.error(f"malformed response ({body[:60]!r})", self.http.hints.protocol) from None

    def models(self) -> list[str]:
        data = self.http.get_json("/models")
        return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        data = self.http.post_json(
            "/embeddings",
            {"model": self.model, "input": list(texts), "encoding_format": "float"},
            idempotent=True,
        )
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise self.http.error("/embeddings returned no 'data'", self.http.hints.protocol)
        rows = sorted(rows, key=lambda r: r.get("index", 0))
        return [r.get("embedding") for r in rows]


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
