"""Fusion of ranked lists: pure functions over lists of hits."""

from __future__ import annotations

from collections.abc import Sequence

from zhiku.types import Hit


def reciprocal_rank_fusion(
    lists: Sequence[Sequence[Hit]],
    k: int,
    method: str,
    weights: Sequence[float] | None = None,
    k_rrf: int = 60,
) -> list[Hit]:
    """score(d) = Σ_i w_i / (k_rrf + rank_i(d)), rank starting at 1 (Cormack et al., 2009).

    Ties are broken by first appearance, so the result is deterministic.
    """
    weights = list(weights) if weights is not None else [1.0] * len(lists)
    scores: dict[str, float] = {}
    sources: dict[str, dict[str, int]] = {}
    for hits, w in zip(lists, weights, strict=True):
        for rank, hit in enumerate(hits, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + w / (k_rrf + rank)
            sources.setdefault(hit.chunk_id, {})[hit.method] = rank
    order = sorted(scores, key=lambda c: -scores[c])[:k]
    return [Hit(c, scores[c], method, extra={"ranks": sources[c]}) for c in order]
