"""Rerankers: a stage after retrieval and fusion that re-scores the best candidates.

``make_reranker(RerankConfig, generator_factory)`` builds the KB's reranker from ``[rerank]`` (None
when reranking is off); ``rerank_config(spec, current)`` applies a ``--rerank KIND[:VALUE]`` option
(``cross-encoder:/models/bge-reranker-base``, ``remote:http://127.0.0.1:8000``, ``llm:listwise``,
``off``). The contract and the reordering rules are in ``base.py``; one file per kind.
"""

from __future__ import annotations

from collections.abc import Callable

from zhiku.config import RerankConfig
from zhiku.errors import ConfigError, UsageError
from zhiku.generate.base import Generator
from zhiku.retrieve.rerank.base import Reranker, RerankOptions, rerankers

__all__ = [
    "Reranker",
    "RerankOptions",
    "make_reranker",
    "rerank_config",
    "rerankers",
]

_OFF = ("off", "none", "no", "false")


def rerank_config(spec: str | None, current: RerankConfig) -> RerankConfig:
    """The KB's ``[rerank]`` with ``--rerank KIND[:VALUE]`` applied.

    VALUE sets the kind's ``spec_field`` (a cross-encoder's model folder, a server's base URL, the
    LLM mode). Options of the KB's reranker are kept when the spec names the same kind (or the KB
    names none), dropped for another kind; ``top_n`` and ``threshold`` are kept.
    """
    if spec is None:
        return current
    kind, _, value = spec.strip().partition(":")
    kind, value = kind.strip(), value.strip()
    if kind.lower() in _OFF:
        return current.model_copy(update={"kind": None})
    if not kind:
        raise UsageError(
            f"--rerank {spec!r} names no reranker",
            "Use e.g. --rerank cross-encoder:/models/bge-reranker-base, remote:http://127.0.0.1:8000, llm",
        )
    cls = rerankers.get(kind)  # an unknown kind fails here, listing the registered ones
    if current.kind == kind:
        options = dict(current.options)
    elif current.kind is None:
        # Options set without a kind (`zhiku eval --set rerank.options.api=tei --rerank remote:URL`):
        # keep the ones this kind has.
        options = {k: v for k, v in current.options.items() if k in cls.Options.model_fields}
    else:
        options = {}
    if value:
        if cls.spec_field is None:
            raise UsageError(f"--rerank {kind} takes no value", f"Use --rerank {kind}")
        options[cls.spec_field] = value
    return current.model_copy(update={"kind": kind, "options": options})


def make_reranker(
    config: RerankConfig, generator_factory: Callable[[], Generator] | None = None
) -> Reranker | None:
    """The reranker ``config`` describes, or None when reranking is off.

    ``generator_factory`` makes the KB's generator; only kinds that score with an LLM call it, and
    only when they first score, so opening a KB never contacts an LLM server.
    """
    if config.kind is None:
        return None
    cls = rerankers.get(config.kind)
    options = cls.parse_options(config.options)
    if cls.needs_generator:
        if generator_factory is None:
            raise ConfigError(
                f"the {cls.name} reranker scores with the KB's generator, and none was given",
                "Call make_reranker(config, generator_factory)",
            )
        return cls(options, generator_factory)  # type: ignore[call-arg]
    return cls(options)  # type: ignore[call-arg]
