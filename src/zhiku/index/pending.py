"""What the database-backed indexes (Milvus, Qdrant) share: rows that wait for their database.

A local Milvus Lite file or Qdrant folder lives inside the index folder, which only ``save`` knows
(and against a server, ``save`` names the build's collection), so rows added before it wait here;
``save`` then writes them in batches, small enough for a server's request limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

#: rows a database write carries at a time
BATCH = 1000


class PendingRows:
    """(id, vector) rows held in memory until the index opens its database."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ids: list[str] = []
        self._blocks: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        self.ids.extend(ids)
        self._blocks.append(vectors)

    def remove(self, ids: Sequence[str]) -> None:
        drop = set(ids)
        keep = [i for i, x in enumerate(self.ids) if x not in drop]
        self.ids, self._blocks = [self.ids[i] for i in keep], [self.matrix()[keep]]

    def matrix(self) -> np.ndarray:
        return np.vstack(self._blocks) if self._blocks else np.zeros((0, self.dim), np.float32)

    def clear(self) -> None:
        self.ids, self._blocks = [], []


def batches(
    ids: Sequence[str], vectors: np.ndarray, size: int = BATCH
) -> Iterator[tuple[Sequence[str], np.ndarray]]:
    """``(ids, vectors)`` in aligned slices of at most ``size`` rows."""
    for i in range(0, len(ids), size):
        yield ids[i : i + size], vectors[i : i + size]
