"""One conformance suite for every vector index; the exact numpy index is the oracle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.milvus_server import ENABLED, SKIP_REASON

from zhiku.index.base import Metric, VectorIndex, indexes

# "milvus" is Milvus Lite (a file in the index folder); "milvus-server" the same class against a
# real Milvus standalone server, run only when ZHIKU_MILVUS_SERVER=1 (CI sets it).
SERVER = pytest.param("milvus-server", marks=pytest.mark.skipif(not ENABLED, reason=SKIP_REASON))
KINDS = ["flat", "faiss-flat", "faiss-hnsw", "milvus", "qdrant", SERVER]
APPROXIMATE = {"faiss-hnsw"}
Make = Callable[[int, Metric], VectorIndex]


@pytest.fixture
def make(kind: str, request: pytest.FixtureRequest) -> Make:
    """A new empty index of ``kind``: the server kind gets the session's Milvus server's uri."""
    if kind == "milvus-server":
        uri = request.getfixturevalue("milvus_server").uri
        return lambda dim, metric: indexes.get("milvus")(dim, metric, uri=uri)
    return lambda dim, metric: indexes.get(kind)(dim, metric)


def saved_and_loaded(index: VectorIndex, directory: Path) -> VectorIndex:
    """The path a KB takes: build, save into the index folder, load, search."""
    directory.mkdir(parents=True, exist_ok=True)
    index.save(directory)
    return type(index).load(directory, index.dim, index.metric)


METRICS = ["ip", "cosine", "l2"]


def test_every_registered_index_is_in_the_suite() -> None:
    names = {k if isinstance(k, str) else k.values[0] for k in KINDS} - {"milvus-server"}
    assert set(indexes.names()) == names, "add the new index kind to KINDS"


def data(n: int = 600, dim: int = 32, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, dim))
    x = centers[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))
    q = centers[rng.integers(0, 20, 25)] + 0.3 * rng.normal(size=(25, dim))
    return [f"id{i}" for i in range(n)], x.astype(np.float32), q.astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_matches_the_exact_oracle(kind: str, metric: Metric, make: Make, tmp_path: Path) -> None:
    ids, x, q = data()
    oracle = indexes.get("flat")(x.shape[1], metric)
    oracle.add(ids, x)
    index = make(x.shape[1], metric)
    index.add(ids[:300], x[:300])
    index.add(ids[300:], x[300:])  # adding in two batches is the same as one
    assert len(index) == len(ids)
    loaded = saved_and_loaded(index, tmp_path / "idx")
    exact = oracle.search(q, 10)
    got = loaded.search(q, 10)
    recall = np.mean(
        [len({i for i, _, _ in g} & {i for i, _, _ in e}) / 10 for g, e in zip(got, exact, strict=True)]
    )
    assert recall >= (0.95 if kind in APPROXIMATE else 1.0)
    for row in got:
        scores = [s for _, s, _ in row]
        assert scores == sorted(scores, reverse=True)  # best first, higher is better for every metric
    if kind not in APPROXIMATE:
        for g, e in zip(got, exact, strict=True):
            np.testing.assert_allclose([s for _, s, _ in g], [s for _, s, _ in e], rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose([d for _, _, d in g], [d for _, _, d in e], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_l2_distance_is_euclidean(kind: str, make: Make, tmp_path: Path) -> None:
    index = make(2, "l2")
    index.add(["a", "b"], np.array([[0, 0], [3, 4]], dtype=np.float32))
    index = saved_and_loaded(index, tmp_path)
    ((first, second),) = index.search(np.array([[0, 0]], dtype=np.float32), 2)
    assert first[0] == "a" and abs(first[2]) < 1e-6
    assert second[0] == "b" and abs(second[2] - 5.0) < 1e-4 and second[1] < first[1]


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index_and_k_larger_than_n(kind: str, make: Make, tmp_path: Path) -> None:
    empty = saved_and_loaded(make(4, "ip"), tmp_path / "empty")
    assert empty.search(np.ones((2, 4), np.float32), 5) == [[], []]
    index = make(4, "ip")
    index.add(["a"], np.ones((1, 4), np.float32))
    index = saved_and_loaded(index, tmp_path / "one")
    assert [i for i, _, _ in index.search(np.ones((1, 4), np.float32), 5)[0]] == ["a"]


@pytest.mark.parametrize("kind", ["flat", "faiss-flat", "faiss-hnsw", "milvus", SERVER])
def test_remove(kind: str, make: Make, tmp_path: Path) -> None:
    ids, x, q = data(50)
    index = make(x.shape[1], "ip")
    if not index.supports_delete:
        pytest.skip(f"{kind} cannot remove ids (the KB rebuilds it instead)")
    index.add(ids, x)
    index = saved_and_loaded(index, tmp_path)
    top = index.search(q[:1], 3)[0][0][0]
    index.remove([top])
    assert len(index) == 49 and top not in [i for i, _, _ in index.search(q[:1], 10)[0]]


def test_unknown_index_lists_names() -> None:
    from zhiku.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="faiss-flat, faiss-hnsw, flat, milvus, qdrant"):
        indexes.get("annoy")


def test_every_index_backend_is_in_the_suite() -> None:
    """A new backend file in zhiku/index/ registers itself: add it to KINDS too, or it goes untested."""
    import importlib
    import pkgutil

    import zhiku.index

    for module in pkgutil.iter_modules(zhiku.index.__path__):
        importlib.import_module(f"zhiku.index.{module.name}")
    names = {k if isinstance(k, str) else k.values[0] for k in KINDS} - {"milvus-server"}
    assert set(indexes.names()) == names
