"""HNSW's search breadth (efSearch): chosen from the index's size unless the user sets it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zhiku.index.base import auto_ef_search, indexes


def test_auto_breadth_grows_with_size_within_bounds() -> None:
    assert [auto_ef_search(n) for n in (0, 3_000, 10_000)] == [64, 64, 64]
    assert auto_ef_search(100_000) == 202  # 64 * sqrt(10)
    assert auto_ef_search(1_000_000) == 640  # past 512, where recall@10 reached 0.953 at a million
    assert auto_ef_search(100_000_000) == 1024
    sizes = [10**k for k in range(2, 9)]
    assert [auto_ef_search(n) for n in sizes] == sorted(auto_ef_search(n) for n in sizes)


def test_faiss_hnsw_follows_its_size_after_add_and_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((40_000, 8)).astype("float32")
    index = indexes.get("faiss-hnsw")(8, "ip", m=4, ef_construction=8)
    assert index._index.hnsw.efSearch == 64
    index.add([str(i) for i in range(len(vecs))], vecs)
    assert index._index.hnsw.efSearch == auto_ef_search(40_000) == 128
    index.save(tmp_path)
    loaded = type(index).load(tmp_path, 8, "ip", m=4, ef_construction=8)
    assert loaded._index.hnsw.efSearch == 128


def test_a_set_breadth_is_kept_at_any_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((20_000, 8)).astype("float32")
    index = indexes.get("faiss-hnsw")(8, "ip", m=4, ef_construction=8, ef_search=40)
    index.add([str(i) for i in range(len(vecs))], vecs)
    assert index._index.hnsw.efSearch == 40
    index.save(tmp_path)
    assert type(index).load(tmp_path, 8, "ip", ef_search=40)._index.hnsw.efSearch == 40
    assert type(index).load(tmp_path, 8, "ip")._index.hnsw.efSearch == auto_ef_search(20_000)
