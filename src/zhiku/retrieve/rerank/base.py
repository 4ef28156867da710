"""The reranker contract: one abstract method, capability attributes, the reordering in the base class.

A reranker reads the query and each candidate passage together (a cross-encoder, a rerank server,
an LLM), which a first-stage retriever cannot afford over the whole corpus, and gives each pair a
relevance score. Every kind passes one conformance suite (tests/contract/test_rerankers.py).

What :meth:`Reranker.rerank` does with the first stage's hits, so every kind behaves the same:

- the first ``top_n`` hits are scored and reordered by the rerank score (higher is better; ties
  keep the first-stage order), which becomes ``Hit.score``; the first-stage rank, score and method
  stay in ``Hit.extra`` (``first_rank``, ``first_score``, ``first_method``) so a reader can see
  what the reranker changed;
- hits beyond ``top_n`` were never judged: they follow the reranked ones in their first-stage
  order with ``extra["reranked"] = False`` and their first-stage score, so a search for more
  hits than were reranked still returns that many (recall is never lost to the rerank depth);
- with a ``threshold``, reranked hits scoring below it are dropped, and so is the unjudged tail
  (a user who asked for a confidence floor does not want hits nobody checked). Scores are on each
  model's own scale (a cross-encoder's sigmoid, a server's relevance_score, an LLM's 0–10), so a
  threshold is set per model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zhiku.errors import ConfigError, UsageError
from zhiku.registry import Registry
from zhiku.types import Hit


class RerankOptions(BaseModel):
    """Base of each kind's typed options (``[rerank.options]`` in zhiku.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(16, ge=1, description="passages scored per model call or request")


class Reranker(ABC):
    """Scores (query, passage) pairs; higher is more relevant.

    ``name``: the registered kind. ``batch_size``: passages per model call or request.
    ``needs_generator``: the kind scores with the KB's LLM generator (``make_reranker`` passes it).
    ``spec_field``: the option that ``--rerank KIND:VALUE`` sets (a model folder, a URL, a mode).
    """

    name: ClassVar[str] = "reranker"
    Options: ClassVar[type[RerankOptions]] = RerankOptions
    needs_generator: ClassVar[bool] = False
    spec_field: ClassVar[str | None] = None
    batch_size: int = 16
    model_id: str = ""

    @abstractmethod
    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage, in the passages' order (higher is better)."""

    @classmethod
    def parse_options(cls, options: dict[str, Any] | RerankOptions) -> RerankOptions:
        if isinstance(options, RerankOptions):
            return options
        try:
            return cls.Options.model_validate(dict(options))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"{cls.name} reranker: option {where}: {first['msg']}",
                f"Fix [rerank.options]; the {cls.name} options are {', '.join(cls.Options.model_fields)}",
            ) from None

    def describe(self) -> str:
        return f"{self.name}:{self.model_id}" if self.model_id else self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def rerank(
        self,
        query: str,
        hits: Sequence[Hit],
        texts: Sequence[str],
        top_n: int | None = None,
        threshold: float | None = None,
    ) -> list[Hit]:
        """``hits`` (with ``texts``, their passages) reordered as the module docstring describes."""
        if len(texts) != len(hits):
            raise UsageError(
                f"rerank got {len(hits)} hits but {len(texts)} passages", "Pass one passage per hit"
            )
        n = len(hits) if top_n is None else max(0, top_n)
        head, tail = list(hits[:n]), list(hits[n:])
        scores = self.score(query, list(texts[:n])) if head else []
        if len(scores) != len(head):
            # A backend bug, not a user error: never pair scores with the wrong passages.
            raise RuntimeError(f"{self.describe()} returned {len(scores)} scores for {len(head)} passages")
        order = sorted(range(len(head)), key=lambda i: -scores[i])  # stable: ties keep first-stage order
        out = [
            head[i].with_(
                score=float(scores[i]),
                extra={
                    **head[i].extra,
                    "first_rank": i + 1,
                    "first_score": head[i].score,
                    "first_method": head[i].method,
                    "reranker": self.describe(),
                    "reranked": True,
                },
            )
            for i in order
            if threshold is None or scores[i] >= threshold
        ]
        if threshold is not None:
            return out
        return out + [
            h.with_(extra={**h.extra, "first_rank": n + j + 1, "reranked": False}) for j, h in enumerate(tail)
        ]


#: kind -> Reranker subclass (built-ins registered by their modules, as plugins would be)
rerankers: Registry[type[Reranker]] = Registry("reranker")
