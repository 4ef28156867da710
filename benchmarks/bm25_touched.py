"""A BM25 query path tried for issue 27 and rejected by measurement (benchmarks/milvus_bm25.py).

The idea: less work per query over bm25s's precomputed score matrix. Measured at 100k and 300k
chunks it was 4-7x slower than bm25s's own ``get_scores`` + one ``argpartition`` (numpy 2.4's
``np.add.at`` is fast now, and ``np.unique`` over long posting lists costs more than a partition
over every chunk), so zhiku keeps bm25s's path; this file stays only so the benchmark shows the
comparison. What follows is the original rationale.


bm25s stores one CSR column per token (``data`` float32 scores, ``indices`` int32 chunk rows,
``indptr`` offsets; memory-mapped). Its ``get_scores`` adds each posting list with ``np.add.at``,
numpy's slow unbuffered scatter, and zhiku then ran ``argpartition`` over every chunk. Here:

- a token's posting list holds each chunk once, so ``scores[rows] += values`` (buffered fancy
  indexing, several times faster) gives the same sums;
- the top k is chosen among the chunks the query touched (its posting lists), not all chunks: at
  a million chunks a query touches a few percent of them.

Results equal bm25s's (the same float32 sums in the same order; checked per query by the benchmark).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def postings(matrix: Mapping[str, Any], token_ids: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(rows, values)`` of each token's posting list (views into the memory-mapped arrays)."""
    indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
    out = []
    for t in token_ids:
        start, end = int(indptr[t]), int(indptr[t + 1])
        if end > start:
            out.append((indices[start:end], data[start:end]))
    return out


def add_scores(
    scores: np.ndarray, lists: Sequence[tuple[np.ndarray, np.ndarray]], weight: float = 1.0
) -> None:
    """Add ``weight ×`` each posting list into ``scores`` in place (rows are unique per list)."""
    for rows, values in lists:
        scores[rows] += values if weight == 1.0 else weight * values


def score(
    matrix: Mapping[str, Any], token_ids: Sequence[int], nonoccurrence: np.ndarray | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """BM25 of every chunk for the summed tokens, and the row lists that can be non-zero.

    ``nonoccurrence``: bm25s's per-token score of a chunk without the token (BM25L, BM25+), added
    to every chunk as bm25s does; then every row can score.
    """
    n = int(matrix["num_docs"])
    scores = np.zeros(n, dtype=np.float32)
    lists = postings(matrix, token_ids)
    add_scores(scores, lists)
    if nonoccurrence is not None:
        scores += nonoccurrence[np.asarray(token_ids)].sum()
        return scores, [np.arange(n)]
    return scores, [rows for rows, _ in lists]


def top_k(scores: np.ndarray, k: int, touched: Sequence[np.ndarray]) -> np.ndarray:
    """The rows of the k best positive scores, best first (stable among ties, by row).

    ``touched``: row lists that hold every row with a non-zero score. When they cover less than
    half the chunks the choice runs over them alone (deduplicated); otherwise over all rows.
    """
    total = sum(len(r) for r in touched)
    if total * 2 < len(scores):
        cand = np.unique(np.concatenate(touched)) if len(touched) > 1 else np.asarray(touched[0])
        if not len(cand):
            return cand
    else:
        cand = np.arange(len(scores))
    s = scores[cand]
    if k < len(cand):
        # every row tied with the k-th best stays in, so which tie makes the cut is decided below
        kth = s[np.argpartition(-s, k - 1)[k - 1]]
        keep = s >= kth
        cand, s = cand[keep], s[keep]
    # best first; among equal scores the lower row first, as a stable sort over all rows gives
    order = np.lexsort((cand, -s))[:k]
    cand, s = cand[order], s[order]
    return cand[s > 0]
