"""Hybrid retrieval: fusion of other methods of the same KB.

``fusion = "rrf"`` (reciprocal rank fusion, the default) or ``"score"`` (scores normalised per
method, then weighted and added); ``weights`` say how much each method counts. ``by_language``
overrides these for questions in one language ("zh", "en" or "mixed", by ``language_of``): how
much a model's ranking is worth depends on how well it reads that language (e5 is far ahead of
BM25 on everyday Chinese wording, level with it on English). Which combination a KB uses by
default is chosen from measurements (README, BENCHMARKS.md), never on a test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zhiku.config import MethodConfig
from zhiku.retrieve.base import Method, MethodOptions, methods
from zhiku.retrieve.fusion import reciprocal_rank_fusion, score_fusion
from zhiku.text.normalise import language_of
from zhiku.types import Hit

Fusion = Literal["rrf", "score"]
Normalize = Literal["minmax", "zscore"]


class LanguageFusion(BaseModel):
    """``[methods.<name>.options.by_language.<language>]``: what changes for such questions."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    weights: list[float] | None = None
    fusion: Fusion | None = None
    normalize: Normalize | None = None


class HybridOptions(MethodOptions):
    of: list[str] = Field(default_factory=lambda: ["bm25", "dense"], min_length=1)
    weights: list[float] | None = None
    fusion: Fusion = "rrf"
    normalize: Normalize = Field("minmax", description="score fusion only")
    k_rrf: int = Field(60, ge=1)
    depth: int = Field(50, ge=1, description="how many hits of each method are fused")
    by_language: dict[Literal["zh", "en", "mixed"], LanguageFusion] = Field(
        default_factory=dict, description="weights, fusion or normalize for questions in one language"
    )

    @model_validator(mode="after")
    def _weights_match(self) -> HybridOptions:
        tables = [("weights", self.weights)] + [
            (f"by_language.{lang}.weights", s.weights) for lang, s in self.by_language.items()
        ]
        for where, weights in tables:
            if weights is not None and len(weights) != len(self.of):
                raise ValueError(f"{where} has {len(weights)} values for {len(self.of)} methods")
        return self

    def only(self, keep: list[str]) -> dict[str, Any]:
        """These options for a fusion of ``keep`` alone (parts of ``of``), every weight list following."""

        def sub(weights: list[float]) -> list[float]:
            return [w for p, w in zip(self.of, weights, strict=True) if p in keep]

        data = self.model_dump(mode="json", exclude_none=True)
        data["of"] = [p for p in self.of if p in keep]
        if self.weights is not None:
            data["weights"] = sub(self.weights)
        for language, settings in self.by_language.items():
            if settings.weights is not None:
                data["by_language"][language]["weights"] = sub(settings.weights)
        return data


@dataclass(frozen=True)
class FusionPlan:
    """How one question is fused: its parts (in ``of`` order), their weights, the fusion."""

    parts: list[str]
    weights: list[float] | None
    fusion: Fusion
    normalize: Normalize


@methods.register("hybrid")
class HybridMethod(Method):
    kind = "hybrid"
    Options = HybridOptions
    options: HybridOptions
    indexed = False
    fuses = True

    def fusing_only(self, parts: list[str]) -> MethodConfig:
        return MethodConfig(kind=self.kind, options=self.options.only(parts))

    def parts(self) -> list[str]:
        return list(self.options.of)

    def search(self, query: str, k: int) -> list[Hit]:
        plan = self.plan(query)
        lists = [self.ctx.resolve(name).search(query, self.depth(k)) for name in plan.parts]
        return self.fuse(lists, k, plan)

    def plan(self, query: str) -> FusionPlan:
        """The parts fused for ``query``, with their weights and fusion.

        The parts this KB uses (``MethodContext.parts_in_use``: an English-only model of the
        defaults is not built in a Chinese KB), less those whose model cannot read the query's
        language: MiniLM ranks a Chinese question in a mixed KB at random, and min-max
        normalisation would stretch that noise to full weight. ``by_language`` settings for the
        query's language replace the general ones.
        """
        o = self.options
        language = language_of(query)
        readers = self.ctx.parts_in_use(self.name, language)
        own = o.by_language.get(language) or LanguageFusion()  # type: ignore[call-overload]
        all_weights = o.weights if own.weights is None else own.weights
        weights = [w for n, w in zip(o.of, all_weights, strict=True) if n in readers] if all_weights else None
        return FusionPlan(readers, weights, own.fusion or o.fusion, own.normalize or o.normalize)

    def depth(self, k: int) -> int:
        return max(k, self.options.depth)

    def fuse(self, lists: list[list[Hit]], k: int, plan: FusionPlan) -> list[Hit]:
        """Fuse the lists of ``plan``'s parts (in that order) its way."""
        if plan.fusion == "score":
            return score_fusion(lists, k, self.name, plan.weights, plan.normalize)
        return reciprocal_rank_fusion(lists, k, self.name, plan.weights, self.options.k_rrf)
