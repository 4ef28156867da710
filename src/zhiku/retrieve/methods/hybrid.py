"""Hybrid retrieval: reciprocal rank fusion of other methods of the same KB."""

from __future__ import annotations

from pydantic import Field, model_validator

from zhiku.retrieve.base import Method, MethodOptions, methods
from zhiku.retrieve.fusion import reciprocal_rank_fusion
from zhiku.types import Hit


class HybridOptions(MethodOptions):
    of: list[str] = Field(default_factory=lambda: ["bm25", "dense"], min_length=1)
    weights: list[float] | None = None
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
        depth = max(k, self.options.depth)
        lists = [self.ctx.resolve(name).search(query, depth) for name in self.options.of]
        return reciprocal_rank_fusion(lists, k, self.name, self.options.weights, self.options.k_rrf)
