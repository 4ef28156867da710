"""A KB's answer and rerank settings as the faces edit them: which rerankers exist, which options
a kind takes, and a check that new settings work before they are saved (no model loads, nothing is
contacted), so a bad setting fails at once with one line.
"""

from __future__ import annotations

from typing import Any

from zhiku.config import KBConfig
from zhiku.errors import ConfigError, NotFoundError


def reranker_names() -> list[str]:
    from zhiku.retrieve.rerank import rerankers

    return rerankers.names()


def reranker_fields(kind: str) -> set[str]:
    """The option names of reranker ``kind`` (an unknown kind raises, listing the known ones)."""
    from zhiku.retrieve.rerank import rerankers

    return set(rerankers.get(kind).Options.model_fields)


def check_generator(config: KBConfig) -> None:
    """The ``[generator]`` options parse (an LLM's options are checked without contacting it)."""
    if config.generator.kind != "extractive":
        from zhiku.generate.llm import parse_options

        parse_options(config.generator.kind, config.generator.options)


def check_reranker(config: KBConfig) -> None:
    """Build the reranker ``config`` describes (no model loads, nothing is contacted)."""
    if config.rerank.kind is None:
        return
    from zhiku.retrieve.rerank import make_reranker, rerankers

    if rerankers.get(config.rerank.kind).needs_generator and config.generator.kind == "extractive":
        raise ConfigError(
            "the llm reranker judges passages with the KB's LLM, and the generator is extractive",
            "Pick an LLM generator (Ollama or OpenAI-compatible) first, or another reranker",
        )

    def no_llm() -> Any:  # never called: an llm reranker makes its generator on first use
        raise RuntimeError("check_reranker must not contact an LLM")

    try:
        make_reranker(config.rerank, no_llm)
    except NotFoundError as e:  # a missing model folder is a bad setting here, not a missing route
        raise ConfigError(e.message, e.hint) from e
