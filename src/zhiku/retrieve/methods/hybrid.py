"""Hybrid retrieval: fusion of other methods of the same KB.

``fusion = "rrf"`` (reciprocal rank fusion, the default) or ``"score"`` (scores normalised per
method, then weighted and added); ``weights`` say how much each method counts. Which combination
a KB uses by default is chosen from measurements (README, BENCHMARKS.md), never on a test split.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from zhiku.retrieve.base import Method, MethodOptions, methods
from zhiku.retrieve.fusion import reciprocal_rank_fusion, score_fusion
from zhiku.text.normalise import language_of
from zhiku.types import Hit


class HybridOptions(MethodOptions):
    of: list[str] = Field(default_factory=lambda: ["bm25", "dense"], min_length=1)
    weights: list[float] | None = None
    fusion: Literal["rrf", "score"] = "rrf"
    normalize: Literal["minmax", "zscore"] = Field("minmax", description="score fusion only")
    k_rrf: int = Field(60, ge=1)
    depth: int = Field(50, ge=1, description="how many hits of each method are fused")

    @model_validator(mode="after")
    def _weights_match(self) -> HybridOptions:
        if self.weights is not None and len(self.weights) != len(self.of):
            raise ValueError(f"weights has {len(self.weights)} values for {len(self.of)} methods")
        return self


@methods.register("hybrid")
class HybridMethod(Method):
    kind = "hybrid"
    Options = HybridOptions
    options: HybridOptions
    indexed = False

    def parts(self) -> list[str]:
        return list(self.options.of)

    def search(self, query: str, k: int) -> list[Hit]:
        names, weights = self.parts_for(query)
        return self.fuse([self.ctx.resolve(name).search(query, self.depth(k)) for name in names], k, weights)

    def parts_for(self, query: str) -> tuple[list[str], list[float] | None]:
        """The parts fused for ``query``, with their weights.

        The parts this KB uses (``MethodContext.parts_in_use``: an English-only model of the
        defaults is not built in a Chinese KB), less those whose model cannot read the query's
        language: MiniLM ranks a Chinese question in a mixed KB at random, and min-max
        normalisation would stretch that noise to full weight.
        """
        o = self.options
        used = self.ctx.parts_in_use(self.name) if self.ctx.parts_in_use else list(o.of)
        language = language_of(query)
        readers = [n for n in used if self.ctx.resolve(n).applicable(language)[0]] or used
        weights = [w for n, w in zip(o.of, o.weights, strict=True) if n in readers] if o.weights else None
        return readers, weights

    def depth(self, k: int) -> int:
        return max(k, self.options.depth)

    def fuse(self, lists: list[list[Hit]], k: int, weights: list[float] | None = None) -> list[Hit]:
        """Fuse the parts' lists (in ``of`` order); ``weights`` overrides the configured ones."""
        o = self.options
        w = weights if weights is not None else o.weights
        if o.fusion == "score":
            return score_fusion(lists, k, self.name, w, o.normalize)
        return reciprocal_rank_fusion(lists, k, self.name, w, o.k_rrf)
