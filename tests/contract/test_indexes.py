"""One conformance suite for every vector index; the exact numpy index is the oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import zhiku.index.faiss  # noqa: F401
import zhiku.index.flat  # noqa: F401
from zhiku.index.base import indexes

KINDS = ["flat", "faiss-flat", "faiss-hnsw"]
METRICS = ["ip", "cosine", "l2"]


def data(n: int = 600, dim: int = 32, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, dim))
    x = centers[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))
    q = centers[rng.integers(0, 20, 25)] + 0.3 * rng.normal(size=(25, dim))
    return [f"id{i}" for i in range(n)], x.astype(np.float32), q.astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_matches_the_exact_oracle(kind: str, metric: str, tmp_path: Path) -> None:
    ids, x, q = data()
    oracle = indexes.get("flat")(x.shape[1], metric)
    oracle.add(ids, x)
    index = indexes.get(kind)(x.shape[1], metric)
    index.add(ids[:300], x[:300])
    index.add(ids[300:], x[300:])  # adding in two batches is the same as one
    assert len(index) == len(ids)
    exact = oracle.search(q, 10)
    got = index.search(q, 10)
    recall = np.mean([len({i for i, _, _ in g} & {i for i, _, _ in e}) / 10 for g, e in zip(got, exact, strict=True)])
    assert recall >= (1.0 if kind != "faiss-hnsw" else 0.95)
    for row in got:
        scores = [s for _, s, _ in row]
        assert scores == sorted(scores, reverse=True)  # best first, higher is better for every metric
    if kind != "faiss-hnsw":
        for g, e in zip(got, exact, strict=True):
            np.testing.assert_allclose([s for _, s, _ in g], [s for _, s, _ in e], rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose([d for _, _, d in g], [d for _, _, d in e], rtol=1e-4, atol=1e-4)
    # a saved index answers the same after loading
    index.save(tmp_path)
    again = type(index).load(tmp_path, x.shape[1], metric)
    assert [[i for i, _, _ in r] for r in again.search(q, 10)] == [[i for i, _, _ in r] for r in got]


@pytest.mark.parametrize("kind", KINDS)
def test_l2_distance_is_euclidean(kind: str) -> None:
    index = indexes.get(kind)(2, "l2")
    index.add(["a", "b"], np.array([[0, 0], [3, 4]], dtype=np.float32))
    (first, second), = index.search(np.array([[0, 0]], dtype=np.float32), 2)
    assert first[0] == "a" and abs(first[2]) < 1e-6
    assert second[0] == "b" and abs(second[2] - 5.0) < 1e-4 and second[1] < first[1]


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index_and_k_larger_than_n(kind: str) -> None:
    index = indexes.get(kind)(4, "ip")
    assert index.search(np.ones((2, 4), np.float32), 5) == [[], []]
    index.add(["a"], np.ones((1, 4), np.float32))
    assert [i for i, _, _ in index.search(np.ones((1, 4), np.float32), 5)[0]] == ["a"]


def test_unknown_index_lists_names() -> None:
    from zhiku.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="faiss-flat, faiss-hnsw, flat"):
        indexes.get("annoy")
