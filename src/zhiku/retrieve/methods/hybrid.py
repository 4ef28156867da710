"""Hybrid retrieval: fusion of other methods of the same KB (``[methods.hybrid]``, or ``a+b``).

The method searches its parts and hands their lists to ``retrieve/fusion.py``, where the rules
live: which parts a question uses, their weights per language, RRF or score fusion, and whether
Milvus fuses them instead, in one request (``engine``, ``one_engine``).
"""

from __future__ import annotations

from typing import Any

from zhiku.config import MethodConfig
from zhiku.retrieve.base import EngineSide, Method, methods
from zhiku.retrieve.fusion import (
    Fusion,
    FusionPlan,
    HybridOptions,
    LanguageFusion,
    Normalize,
    fuse,
    fusing_engine,
    one_engine,
    plan_fusion,
)
from zhiku.types import Hit

# Re-exported: the fusion's settings are defined with its rules, in ``retrieve/fusion.py``.
__all__ = ["Fusion", "FusionPlan", "HybridMethod", "HybridOptions", "LanguageFusion", "Normalize"]


@methods.register("hybrid")
class HybridMethod(Method):
    kind = "hybrid"
    Options = HybridOptions
    options: HybridOptions
    indexed = False
    fuses = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._notes: list[str] = []  # why the last search was not fused as asked

    def fusing_only(self, parts: list[str]) -> MethodConfig:
        return MethodConfig(kind=self.kind, options=self.options.only(parts))

    def parts(self) -> list[str]:
        return list(self.options.of)

    def search(self, query: str, k: int) -> list[Hit]:
        plan = self.plan(query)
        # Every part loaded before any searches: a vector part's model then loads in the background
        # (``Embedder.preload``) while the other parts search.
        parts = {name: self.ctx.resolve(name) for name in plan.parts}
        sides = {name: m.engine_side() for name, m in parts.items()}
        request, note = one_engine(self.options, plan, sides, self.name)
        self._notes = [note] if note else []
        if request is not None:
            words = parts[request.words].query_words(query)
            return parts[request.vectors].search_with_words(
                query, words, self.depth(k), k, request.ranker, request.k_rrf, request.weights, self.name
            )
        lists = [m.search(query, self.depth(k)) for m in parts.values()]
        return self.fuse(lists, k, plan)

    def fusing_engine(self, sides: dict[str, EngineSide | None]) -> tuple[str, str]:
        return fusing_engine(self.options, [p for p in self.options.of if p in sides], sides)

    def search_notes(self) -> list[str]:
        return list(self._notes)

    def plan(self, query: str) -> FusionPlan:
        """The parts fused for ``query``, with their weights and fusion (see ``plan_fusion``)."""
        return plan_fusion(self.options, query, lambda language: self.ctx.parts_in_use(self.name, language))

    def depth(self, k: int) -> int:
        return max(k, self.options.depth)

    def fuse(self, lists: list[list[Hit]], k: int, plan: FusionPlan) -> list[Hit]:
        """Fuse the lists of ``plan``'s parts (in that order) its way."""
        return fuse(lists, k, self.name, plan, self.options.k_rrf)
