"""Exact search in numpy: the oracle every approximate index is tested against."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.index.base import Metric, VectorIndex, indexes, prepare, to_score_distance


class FlatIndex(VectorIndex):
    kind = "flat"
    supports_delete = True

    def __init__(self, dim: int, metric: Metric = "ip", **options: Any) -> None:
        super().__init__(dim, metric, **options)
        self.ids: list[str] = []
        self.vectors = np.zeros((0, dim), dtype=np.float32)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        self.ids.extend(ids)
        self.vectors = np.vstack([self.vectors, prepare(vectors, self.metric)])

    def remove(self, ids: Sequence[str]) -> None:
        drop = set(ids)
        keep = [i for i, x in enumerate(self.ids) if x not in drop]
        self.ids = [self.ids[i] for i in keep]
        self.vectors = self.vectors[keep]

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float, float]]]:
        q = prepare(queries, self.metric)
        if not self.ids:
            return [[] for _ in range(len(q))]
        if self.metric == "l2":
            raw = (q**2).sum(1)[:, None] - 2 * q @ self.vectors.T + (self.vectors**2).sum(1)[None, :]
            order = np.argsort(raw, axis=1, kind="stable")[:, :k]
        else:
            raw = q @ self.vectors.T
            order = np.argsort(-raw, axis=1, kind="stable")[:, :k]
        return [
            [(self.ids[j], *to_score_distance(float(raw[r, j]), self.metric)) for j in row]
            for r, row in enumerate(order)
        ]

    def save(self, directory: Path) -> None:
        np.save(directory / "vectors.npy", self.vectors)
        (directory / "index_ids.json").write_text(json.dumps(self.ids), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, dim: int, metric: Metric, **options: Any) -> FlatIndex:
        index = cls(dim, metric, **options)
        index.vectors = np.load(directory / "vectors.npy")
        index.ids = json.loads((directory / "index_ids.json").read_text(encoding="utf-8"))
        return index


indexes.add("flat", FlatIndex)
