"""Dense methods whose vectors come from an LLM or an embedding server.

Both are vector methods (``VectorMethod``: vector cache, index, search); they only add the options
a server or a prompt needs and build the embedder from them:

``remote``      an Ollama or OpenAI-compatible embedding model, with its base URL and key variable::

    [methods.m3]
    kind = "remote"
    options = { embedder = "ollama", model = "bge-m3", base_url = "http://gpu-box:11434" }

``prompt-llm``  a generative LLM's last-token hidden state under a prompt template (PromptEOL,
                PromptSTH, PromptSUM, Pretended CoT, Knowledge Enhancement; arXiv 2404.03921), from a
                local model folder, or the prompted text sent to a server's embedding endpoint::

    [methods.eol]
    kind = "prompt-llm"
    options = { model = "/models/Qwen2.5-0.5B", template = "ke" }

``kind = "dense"`` with ``embedder = "ollama"`` works too (URL and key from the environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from zhiku.retrieve.base import MethodOptions, methods
from zhiku.retrieve.methods.vector import DenseOptions, VectorMethod


class RemoteDenseOptions(DenseOptions):
    embedder: str = "ollama"
    model: str = "bge-m3"
    batch_size: int = Field(32, ge=1)
    base_url: str | None = Field(None, description="default: the backend's default or environment variable")
    urls: list[str] | None = Field(
        None, description="several servers of the same model, used at once (instead of base_url)"
    )
    api_key_env: str | None = Field(None, description="environment variable holding the API key (openai)")
    timeout: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0)


class PromptLLMOptions(RemoteDenseOptions):
    embedder: str = Field("local", description="local (a model folder), ollama or openai")
    model: str = Field("", description="a local causal LM folder, or the model name on the server")
    batch_size: int = Field(8, ge=1)
    template: str = Field("eol", description="eol, sth, sum, cot, ke, none, or a template with [X]")
    template_language: Literal["auto", "zh", "en"] = Field("auto", description="auto: the KB's language")
    device: str = "cpu"


def _server_kwargs(o: RemoteDenseOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": o.model,
        "base_url": o.base_url,
        "api_key_env": o.api_key_env,
        "batch_size": o.batch_size,
        "timeout": o.timeout,
        "retries": o.retries,
        "urls": o.urls,
        "languages": o.languages,
        "query_prefix": o.query_prefix or "",
        "doc_prefix": o.doc_prefix or "",
        **o.embedder_options,
    }
    if o.dim:  # a known size saves the probe request (and sizes the hashing fake in tests)
        kwargs["dim"] = o.dim
    return kwargs


@methods.register("remote")
class RemoteDenseMethod(VectorMethod):
    kind = "remote"
    Options: ClassVar[type[MethodOptions]] = RemoteDenseOptions
    options: RemoteDenseOptions

    def embedder_spec(self, index_dir: Path | None) -> tuple[str, dict[str, Any]]:
        return self.options.embedder, _server_kwargs(self.options)


@methods.register("prompt-llm")
class PromptLLMMethod(VectorMethod):
    kind = "prompt-llm"
    Options: ClassVar[type[MethodOptions]] = PromptLLMOptions
    options: PromptLLMOptions

    def embedder_spec(self, index_dir: Path | None) -> tuple[str, dict[str, Any]]:
        o = self.options
        common = {"template": o.template, "template_language": self._template_language(index_dir)}
        if o.embedder == "local":
            return "prompt-llm", {
                **common,
                "model": o.model,
                "batch_size": o.batch_size,
                "max_seq_length": o.max_seq_length,
                "device": o.device,
                "languages": o.languages,
            }
        # a server's embedding endpoint fed prompted text (see TemplatedEmbedder)
        return "prompt-llm-remote", {**common, "inner": o.embedder, "inner_options": _server_kwargs(o)}

    def _template_language(self, directory: Path | None) -> str:
        if self.options.template_language != "auto":
            return self.options.template_language
        # Queries must be prompted like the documents were: reuse what the index was built with.
        if directory is not None and (directory / "embedder.json").exists():
            try:
                built = json.loads((directory / "embedder.json").read_text(encoding="utf-8"))
                if built.get("template_language") in ("zh", "en"):
                    return str(built["template_language"])
            except (OSError, ValueError):
                pass
        return "zh" if self.ctx.language() == "zh" else "en"
