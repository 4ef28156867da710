"""The vector index contract: every backend returns the same ``[(id, score)]`` shape.

Scores are "higher is better" for every metric; for L2 the score is the negated squared distance
and the distance itself is returned alongside, so output can show it as users expect.
Every backend passes tests/contract/test_indexes.py, with ``flat`` (numpy brute force) as the oracle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from zhiku.registry import Registry

Metric = Literal["ip", "cosine", "l2"]


class VectorIndex(ABC):
    """Holds (string id, vector) pairs and finds nearest neighbours.

    ``supports_delete``: whether ``remove`` works without a rebuild.
    Indexes are derived data: a KB rebuilds them from its catalog and cached vectors.
    """

    kind: ClassVar[str] = "index"
    supports_delete: ClassVar[bool] = False
    #: can keep each chunk's words beside its vector and rank both in one request (Milvus's full
    #: text): ``set_words`` before ``save``, then ``words_missing`` and ``hybrid_search``
    keeps_words: ClassVar[bool] = False

    def __init__(self, dim: int, metric: Metric = "ip", **options: Any) -> None:
        self.dim = dim
        self.metric: Metric = metric
        self.options = options

    @abstractmethod
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float, float]]]:
        """For each query row: up to k ``(id, score, distance)`` best first.

        ``distance`` is the metric's own measure (1 - cosine, L2 distance, or -ip).
        """

    @abstractmethod
    def save(self, directory: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, dim: int, metric: Metric, **options: Any) -> VectorIndex: ...

    def remove(self, ids: Sequence[str]) -> None:
        raise NotImplementedError(f"{self.kind} cannot remove ids; rebuild it")

    def __len__(self) -> int:
        return 0

    def set_words(self, ids: Sequence[str], tokens: Sequence[Sequence[str]]) -> None:
        """The KB's tokens of each chunk, kept beside its vector by the next ``save``."""
        raise NotImplementedError(f"{self.kind} keeps no words")

    def words_missing(self) -> str:
        """Why this index cannot rank words with vectors in one request ("" when it can)."""
        return f"the {self.kind} index keeps no words"

    def hybrid_search(
        self,
        words: Sequence[str],
        vector: np.ndarray,
        depth: int,
        k: int,
        ranker: str,
        k_rrf: int = 60,
        weights: Sequence[float] = (1.0, 1.0),
    ) -> list[tuple[str, float]]:
        """One request: ``depth`` best by BM25 of ``words`` and by ``vector``, fused by the index's
        own ``ranker`` ("rrf" with ``k_rrf``, or "weighted" with ``weights``, words first)."""
        raise NotImplementedError(f"{self.kind} keeps no words")

    def describe(self) -> dict[str, Any]:
        return {"index": self.kind, "metric": self.metric, "dim": self.dim, **self.options}


def auto_ef_search(n: int, chosen: int | None = None) -> int:
    """HNSW's search breadth for ``n`` vectors: ``chosen`` when the user set ``ef_search``; else 64
    up to 10,000 vectors, then growing with the square root of the size (about 200 at 100,000, 640
    at a million), at most 1,024. Every HNSW backend asks here (faiss-hnsw, Milvus, Qdrant servers).

    One fixed value cannot serve every size: with zhiku's default graph (M 32, efConstruction 200)
    recall@10 against exact was 0.98 at 3,000 vectors with 64, 0.958 at 100,000 with 128, but 0.71
    at a million with 64 and 0.953 with 512 (docs/million.md), each search under 2 ms there.
    """
    if chosen is not None:
        return chosen
    return int(min(1024, max(64, round(64 * (max(n, 1) / 10_000) ** 0.5))))


#: rows added to an index at a time when it is filled from a (possibly memory-mapped) matrix
FILL_BATCH = 8192


def fill_index(
    index: VectorIndex,
    ids: Sequence[str],
    matrix: np.ndarray,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Add rows a batch at a time: HNSW grows incrementally, and no full normalised copy of a large
    (memory-mapped) matrix is made at once. ``progress(n)`` after each batch."""
    for start in range(0, len(ids), FILL_BATCH):
        batch = ids[start : start + FILL_BATCH]
        index.add(batch, np.asarray(matrix[start : start + FILL_BATCH]))
        if progress:
            progress(len(batch))


def prepare(vectors: np.ndarray, metric: Metric) -> np.ndarray:
    """Cosine is inner product over unit vectors: normalise once, here, for every backend."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        from zhiku.embed.base import l2_normalize

        v = l2_normalize(v)
    return v


def to_score_distance(raw: float, metric: Metric) -> tuple[float, float]:
    """Map a backend's raw value (ip / cosine similarity, or squared L2) to (score, distance)."""
    if metric == "l2":
        d = float(np.sqrt(max(raw, 0.0)))
        return -d, d
    if metric == "cosine":
        return float(raw), 1.0 - float(raw)
    return float(raw), -float(raw)


#: name -> VectorIndex subclass ("flat", "faiss-flat", "faiss-hnsw", "milvus")
indexes: Registry[type[VectorIndex]] = Registry("index", "vector index")
