"""BM25's top-k choice over the chunks that scored: the best positive scores, ties by chunk order."""

from __future__ import annotations

import numpy as np
import pytest

from zhiku.retrieve.methods.bm25 import SAMPLE, top_rows


def reference(scores: np.ndarray, k: int) -> list[int]:
    """Every positive score sorted: best first, the lower row first among equal scores."""
    return sorted((i for i in range(len(scores)) if scores[i] > 0), key=lambda i: (-scores[i], i))[:k]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_same_rows_as_sorting_every_score(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    scores = np.zeros(n, dtype=np.float32)
    touched = rng.choice(n, size=int(rng.integers(0, n + 1)), replace=False)
    # few distinct values: many ties, also at the k-th place
    scores[touched] = rng.integers(1, 6, size=len(touched)).astype(np.float32) / 2
    assert top_rows(scores, k).tolist() == reference(scores, k)


def test_nothing_scored() -> None:
    assert top_rows(np.zeros(5, dtype=np.float32), 3).tolist() == []


def test_fewer_scored_than_k() -> None:
    scores = np.array([0, 2, 0, 1, 2], dtype=np.float32)
    assert top_rows(scores, 10).tolist() == [1, 4, 3]


@pytest.mark.parametrize("touched", [5, 40, 3_000, 60_000])
def test_large_score_arrays_take_the_sampled_floor(touched: int) -> None:
    # past 4 × SAMPLE chunks the choice starts from a floor read off a sample: still exact
    rng = np.random.default_rng(touched)
    n = 4 * SAMPLE + 17
    scores = np.zeros(n, dtype=np.float32)
    rows = rng.choice(n, size=touched, replace=False)
    scores[rows] = rng.integers(1, 40, size=touched).astype(np.float32) / 4
    best = np.flatnonzero(scores > 0)
    expected = best[np.lexsort((best, -scores[best]))][:10].tolist()
    assert top_rows(scores, 10).tolist() == expected
