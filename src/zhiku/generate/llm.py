"""LLM answers: a chat backend (Ollama, OpenAI-compatible, local) behind the generator contract.

``LLMGenerator`` turns the question and the numbered context blocks into chat messages (templates
from ``prompts.py``, context packed under the window by ``packing.py``) and streams the backend's
reply. Backends implement one method, ``chat``, that yields text pieces; they are registered by name
as the generators ``ollama``, ``openai`` and ``local`` (the
extractive answerer stays the default). ``--llm KIND:MODEL`` specs are parsed here.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from zhiku.config import GeneratorConfig, validated
from zhiku.errors import ConfigError, UsageError
from zhiku.generate.base import ContextBlock, Generator, generators
from zhiku.generate.packing import approx_tokens, pack_blocks
from zhiku.generate.prompts import (
    PromptSet,
    fill,
    format_history,
    load_templates,
    question_language,
    where_of,
)

Message = dict[str, str]

#: tokens a chat format adds around messages (role markers, BOS): kept free when packing
CHAT_OVERHEAD_TOKENS = 32


class LLMOptions(BaseModel):
    """``[generator.options]`` of an LLM generator (and the LLM part of RAG-Fusion's options)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("", description="model name on the server, or a local folder for `local`")
    base_url: str | None = Field(None, description="server URL; default per backend or from the environment")
    api_key: SecretStr | None = Field(None, description="prefer api_key_env: a key in zhiku.toml is readable")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    timeout: float = Field(120.0, gt=0, description="seconds to wait for the server before giving up")
    retries: int = Field(2, ge=0, description="retries where safe: connection refused, 429/503")
    temperature: float = Field(0.1, ge=0)
    max_tokens: int = Field(512, ge=1, description="answer length limit, reserved in the window")
    context_window: int | None = Field(
        None, ge=256, description="model window in tokens; default per backend"
    )
    language: Literal["auto", "zh", "en"] = "auto"
    prompt_file: str | None = Field(None, description="TOML/JSON file of templates, tables zh and en")
    prompts: dict[str, dict[str, str]] = Field(default_factory=dict, description="inline template overrides")
    hide_thinking: bool = Field(True, description="drop a leading <think>…</think> (DeepSeek-R1, Qwen3)")
    device: str = Field("cpu", description="`local` only: torch device")
    extra: dict[str, Any] = Field(default_factory=dict, description="passed through in the request body")

    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None


class ChatBackend(ABC):
    """One LLM behind one method: ``chat`` yields the reply in pieces as they are generated."""

    kind: ClassVar[str] = "llm"
    default_window: ClassVar[int] = 4096

    def __init__(self, options: LLMOptions) -> None:
        self.options = options
        self.model = options.model

    @abstractmethod
    def chat(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> Iterator[str]:
        """Stream the assistant's reply to ``messages`` ({"role", "content"} dicts)."""

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def context_window(self) -> int:
        return self.options.context_window or self.default_window

    def describe(self) -> str:
        return f"{self.kind}:{self.model}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"


class LLMGeneratorFactory:
    """The ``generators`` entry of an LLM kind: builds an ``LLMGenerator`` around its chat backend.

    LLM backends are generators like the extractive answerer, in the one ``generators`` registry;
    this wrapper keeps the backend class reachable for code that needs the raw chat (RAG-Fusion,
    follow-up rewriting, LLM reranking).
    """

    def __init__(self, backend: type[ChatBackend]) -> None:
        self.backend = backend

    def __call__(self, **options: Any) -> LLMGenerator:
        return LLMGenerator(make_backend(self.backend.kind, options))


def register_backend(cls: type[ChatBackend]) -> type[ChatBackend]:
    """Class decorator: register a chat backend as the generator kind ``cls.kind``."""
    generators.add(cls.kind, LLMGeneratorFactory(cls))
    return cls


def parse_options(kind: str, options: Mapping[str, Any] | LLMOptions) -> LLMOptions:
    if isinstance(options, LLMOptions):
        return options
    return validated(
        LLMOptions, dict(options), f"{kind} generator: option ", "Fix [generator.options] in zhiku.toml"
    )


def make_backend(kind: str, options: Mapping[str, Any] | LLMOptions) -> ChatBackend:
    factory = generators.get(kind)
    if not isinstance(factory, LLMGeneratorFactory):
        llms = [n for n, f in generators.items() if isinstance(f, LLMGeneratorFactory)]
        raise ConfigError(f"{kind!r} is not an LLM backend", f"Choose one of: {', '.join(llms)}")
    cls = factory.backend
    opts = parse_options(kind, options)
    if not opts.model:
        example = "local:/path/to/model" if kind == "local" else f"{kind}:qwen2.5:7b"
        raise ConfigError(
            f"no model given for the {kind} backend", f"Use --llm {example}, or set [generator.options] model"
        )
    return cls(opts)


def complete(
    backend: ChatBackend, messages: Sequence[Message], max_tokens: int = 256, temperature: float = 0.0
) -> str:
    """The whole reply as one string (for query rewriting and RAG-Fusion), thinking removed."""
    return "".join(
        strip_thinking(backend.chat(messages, max_tokens=max_tokens, temperature=temperature))
    ).strip()


class LLMGenerator(Generator):
    name = "llm"
    streams = True

    def __init__(self, backend: ChatBackend) -> None:
        self.backend = backend
        self.options = backend.options
        self.templates = load_templates(self.options.prompt_file, self.options.prompts)
        #: numbers of the blocks the last prompt carried (the rest did not fit the window)
        self.last_packed: list[int] = []

    def describe(self) -> str:
        return self.backend.describe()

    def templates_for(self, question: str) -> PromptSet:
        return self.templates[question_language(question, self.options.language)]

    def generate(self, question: str, contexts: Sequence[ContextBlock]) -> Iterator[str]:
        tpl = self.templates_for(question)
        if not contexts:
            # Nothing retrieved: the instructions would make the model say so anyway; skip the call.
            self.last_packed = []
            yield tpl.not_found
            return
        messages = self.messages(question, contexts, tpl)
        stream = self.backend.chat(
            messages, max_tokens=self.options.max_tokens, temperature=self.options.temperature
        )
        yield from strip_thinking(stream) if self.options.hide_thinking else stream

    def messages(self, question: str, contexts: Sequence[ContextBlock], tpl: PromptSet) -> list[Message]:
        count = self.backend.count_tokens
        window = self.backend.context_window()

        def render(b: ContextBlock) -> str:
            return fill(
                tpl.context_block,
                n=b.n,
                title=b.title,
                heading=b.heading,
                source=b.source,
                where=where_of(b.title, b.heading),
                text=b.text,
            )

        around = (
            count(tpl.system) + count(fill(tpl.user, context="", question=question)) + CHAT_OVERHEAD_TOKENS
        )
        budget = window - self.options.max_tokens - around
        packed = pack_blocks(contexts, budget, render, count, separator_tokens=count(tpl.block_separator))
        if not packed:
            raise ConfigError(
                f"the model's window ({window} tokens) leaves no room for context after the question, the "
                f"instructions and the answer reserve ({self.options.max_tokens} tokens)",
                "Raise context_window or lower max_tokens in [generator.options]",
            )
        self.last_packed = [b.n for b in packed]
        context = tpl.block_separator.join(render(b) for b in packed)
        return [
            {"role": "system", "content": tpl.system},
            {"role": "user", "content": fill(tpl.user, context=context, question=question)},
        ]

    def standalone_question(
        self, question: str, history: Sequence[tuple[str, str]], max_turns: int = 4
    ) -> str:
        """Rewrite a follow-up ("它支持中文吗？") into a query that stands on its own, for retrieval."""
        if not history:
            return question
        tpl = self.templates_for(question)
        turns = [(q, a if len(a) <= 400 else a[:400] + "…") for q, a in history[-max_turns:]]
        reply = complete(
            self.backend,
            [
                {"role": "system", "content": tpl.rewrite_system},
                {
                    "role": "user",
                    "content": fill(tpl.rewrite_user, history=format_history(turns, tpl), question=question),
                },
            ],
            max_tokens=128,
        )
        return first_line(reply) or question


_LABEL = re.compile(r"^\s*(?:standalone (?:query|question)|query|独立查询|查询|改写)\s*[:：]\s*", re.I)


def first_line(reply: str) -> str:
    for line in reply.splitlines():
        line = _LABEL.sub("", line).strip().strip("\"'“”「」`").strip()
        if line:
            return line
    return ""


def strip_thinking(pieces: Iterable[str]) -> Iterator[str]:
    """Drop a leading ``<think>…</think>`` block (reasoning models), streaming the rest unchanged."""
    open_tag, close_tag = "<think>", "</think>"
    state, buf = "start", ""
    for piece in pieces:
        if state == "out":
            yield piece
            continue
        buf += piece
        if state == "start":
            head = buf.lstrip()
            if not head or (len(head) < len(open_tag) and open_tag.startswith(head)):
                continue  # could still become the tag
            if not head.startswith(open_tag):
                state = "out"
                yield buf
                buf = ""
                continue
            state, buf = "think", head[len(open_tag) :]
        if state == "think":
            end = buf.find(close_tag)
            if end < 0:
                buf = buf[-(len(close_tag) - 1) :]  # a tag may straddle two pieces
                continue
            state, buf = "after", buf[end + len(close_tag) :]
        if state == "after":
            buf = buf.lstrip()
            if buf:
                state = "out"
                yield buf
                buf = ""
    if state == "start" and buf:
        yield buf


# -- `--llm KIND:MODEL` --------------------------------------------------------------------------------
def parse_llm_spec(spec: str) -> tuple[str, str]:
    """``"ollama:qwen2.5:7b"`` -> ``("ollama", "qwen2.5:7b")``; ``"extractive"`` -> ``("extractive", "")``."""
    kind, _, model = spec.strip().partition(":")
    if not kind:
        raise UsageError(
            f"--llm {spec!r} names no backend",
            "Use e.g. --llm ollama:qwen2.5:7b, openai:deepseek-chat, local:/path/to/model, extractive",
        )
    return kind, model.strip()


def generator_config(spec: str | None, base_url: str | None, current: GeneratorConfig) -> GeneratorConfig:
    """The KB's generator settings with ``--llm``/``--base-url`` applied.

    Options of the KB's generator are kept when ``--llm`` names the same backend (its base URL, key
    variable, window…), and dropped for another backend.
    """
    if spec is None:
        if base_url is None:
            return current
        return current.model_copy(update={"options": {**current.options, "base_url": base_url}})
    kind, model = parse_llm_spec(spec)
    generators.get(kind)  # an unknown kind fails here, listing the registered ones
    if kind == "extractive":
        if model or base_url:
            raise UsageError(
                "the extractive answerer takes no model or base URL", "Use --llm extractive alone"
            )
        return GeneratorConfig(kind=kind, options=current.options if current.kind == kind else {})
    options = dict(current.options) if current.kind == kind else {}
    if model:
        options["model"] = model
    if base_url:
        options["base_url"] = base_url
    return GeneratorConfig(kind=kind, options=options)
