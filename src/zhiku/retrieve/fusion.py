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


def normalized_scores(hits: Sequence[Hit], how: str) -> dict[str, float]:
    """Each method's scores on one scale, so they can be added: ``minmax`` maps the list's scores to
    0..1 (a flat list gives 1.0), ``zscore`` to standard deviations from the list's mean."""
    scores = [h.score for h in hits]
    if not scores:
        return {}
    if how == "zscore":
        mean = sum(scores) / len(scores)
        sd = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
        return {h.chunk_id: (h.score - mean) / sd if sd else 0.0 for h in hits}
    lo, hi = min(scores), max(scores)
    return {h.chunk_id: (h.score - lo) / (hi - lo) if hi > lo else 1.0 for h in hits}


def score_fusion(
    lists: Sequence[Sequence[Hit]],
    k: int,
    method: str,
    weights: Sequence[float] | None = None,
    normalize: str = "minmax",
) -> list[Hit]:
    """score(d) = Σ_i w_i · norm_i(d): scores normalised per list, then weighted and added.

    Unlike RRF it keeps how *much* better a method found one chunk than the next (BM25's sharp
    peaks on an exact match survive). A chunk a method did not retrieve gets that method's floor:
    0 for minmax, the list's minimum for zscore. Ties are broken by first appearance.
    """
    weights = list(weights) if weights is not None else [1.0] * len(lists)
    scores: dict[str, float] = {}
    sources: dict[str, dict[str, int]] = {}
    per_list = [normalized_scores(hits, normalize) for hits in lists]
    floors = [min(n.values()) if n and normalize == "zscore" else 0.0 for n in per_list]
    for hits in lists:
        for rank, hit in enumerate(hits, start=1):
            scores.setdefault(hit.chunk_id, 0.0)
            sources.setdefault(hit.chunk_id, {})[hit.method] = rank
    for cid in scores:
        scores[cid] = sum(w * n.get(cid, f) for w, n, f in zip(weights, per_list, floors, strict=True))
    order = sorted(scores, key=lambda c: -scores[c])[:k]
    return [Hit(c, scores[c], method, extra={"ranks": sources[c]}) for c in order]
