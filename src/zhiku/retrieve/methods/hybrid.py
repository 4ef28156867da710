"""Hybrid retrieval: fusion of other methods of the same KB (``[methods.hybrid]``, or ``a+b``).

The method searches its parts and hands their lists to ``retrieve/fusion.py``, where the rules
live: which parts a question uses, their weights per language, RRF or score fusion.
"""

from __future__ import annotations

from zhiku.config import MethodConfig
from zhiku.retrieve.base import Method, methods
from zhiku.retrieve.fusion import (
    Fusion,
    FusionPlan,
    HybridOptions,
    LanguageFusion,
    Normalize,
    fuse,
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

    def fusing_only(self, parts: list[str]) -> MethodConfig:
        return MethodConfig(kind=self.kind, options=self.options.only(parts))

    def parts(self) -> list[str]:
        return list(self.options.of)

    def search(self, query: str, k: int) -> list[Hit]:
        plan = self.plan(query)
        # Every part loaded before any searches: a vector part's model then loads in the background
        # (``Embedder.preload``) while the other parts search.
        parts = [self.ctx.resolve(name) for name in plan.parts]
        lists = [part.search(query, self.depth(k)) for part in parts]
        return self.fuse(lists, k, plan)

    def plan(self, query: str) -> FusionPlan:
        """The parts fused for ``query``, with their weights and fusion (see ``plan_fusion``)."""
        return plan_fusion(self.options, query, lambda language: self.ctx.parts_in_use(self.name, language))

    def depth(self, k: int) -> int:
        return max(k, self.options.depth)

    def fuse(self, lists: list[list[Hit]], k: int, plan: FusionPlan) -> list[Hit]:
        """Fuse the lists of ``plan``'s parts (in that order) its way."""
        return fuse(lists, k, self.name, plan, self.options.k_rrf)
