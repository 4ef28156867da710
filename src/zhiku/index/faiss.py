"""Faiss indexes: exact (``faiss-flat``) and HNSW (``faiss-hnsw``), saved in Faiss's own format.

Faiss stores int64 positions; our string ids live beside the index in ``index_ids.json``. HNSW
cannot remove ids, so the KB rebuilds it from cached vectors after deletions (cheap next to
embedding), rather than keeping tombstones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.index.base import Metric, VectorIndex, auto_ef_search, indexes, prepare, to_score_distance


def _faiss() -> Any:
    import faiss

    return faiss


class FaissIndex(VectorIndex):
    kind = "faiss-flat"
    factory = "Flat"

    def __init__(self, dim: int, metric: Metric = "ip", **options: Any) -> None:
        super().__init__(dim, metric, **options)
        self.ids: list[str] = []
        self._index = self._make()

    def _faiss_metric(self) -> int:
        f = _faiss()
        return f.METRIC_L2 if self.metric == "l2" else f.METRIC_INNER_PRODUCT

    def _make(self) -> Any:
        return _faiss().index_factory(self.dim, self.factory, self._faiss_metric())

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add(prepare(vectors, self.metric))
            self.ids.extend(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float, float]]]:
        q = prepare(queries, self.metric)
        if not self.ids:
            return [[] for _ in range(len(q))]
        raw, pos = self._index.search(q, min(k, len(self.ids)))
        return [
            [
                (self.ids[p], *to_score_distance(float(v), self.metric))
                for v, p in zip(rv, rp, strict=True)
                if p >= 0
            ]
            for rv, rp in zip(raw, pos, strict=True)
        ]

    def save(self, directory: Path) -> None:
        _faiss().write_index(self._index, str(directory / "index.faiss"))
        (directory / "index_ids.json").write_text(json.dumps(self.ids), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, dim: int, metric: Metric, **options: Any) -> FaissIndex:
        index = cls(dim, metric, **options)
        index._index = _faiss().read_index(str(directory / "index.faiss"))
        index.ids = json.loads((directory / "index_ids.json").read_text(encoding="utf-8"))
        index._configure()  # after the ids: HNSW's efSearch may follow the size
        return index

    def _configure(self) -> None:
        pass


class FaissHNSWIndex(FaissIndex):
    kind = "faiss-hnsw"

    def __init__(
        self,
        dim: int,
        metric: Metric = "ip",
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int | None = None,
        **options: Any,
    ) -> None:
        # ef_search None: chosen from the index's size (``auto_ef_search``) each time it changes.
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        super().__init__(dim, metric, m=m, ef_construction=ef_construction, ef_search=ef_search, **options)

    def _make(self) -> Any:
        f = _faiss()
        index = f.IndexHNSWFlat(self.dim, self.m, self._faiss_metric())
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = auto_ef_search(0, self.ef_search)
        return index

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        super().add(ids, vectors)
        self._configure()

    def _configure(self) -> None:
        # efSearch is a search-time setting, not always what was saved: apply the configured one,
        # or the one this size calls for.
        self._index.hnsw.efSearch = auto_ef_search(len(self.ids), self.ef_search)


indexes.add("faiss-flat", FaissIndex)
indexes.add("faiss-hnsw", FaissHNSWIndex)
