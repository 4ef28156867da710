"""Per-chunk vectors that outlive an index: keyed by the hash of the chunk text, per embedder.

Embedding is the slow part of a dense build (minutes to hours on a CPU), so its results are kept
where neither a rebuild nor an interrupted build loses them: ``cache/vectors/<embedder key>/`` holds
append-only shards (``NAME.npy`` + ``NAME.json`` with the hashes), each written atomically as soon
as a batch is embedded. A shard counts only once its ``.json`` exists (written last), so a build
killed mid-write leaves at most an orphan ``.npy``. After a complete build the cache is compacted to
the vectors of the current corpus, so deleted chunks do not accumulate.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.store.files import atomic_write_text


def cache_key(description: dict[str, Any]) -> str:
    """A folder name for an embedder: vectors of another model or setting never mix."""
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


class VectorCache:
    def __init__(self, directory: Path, dim: int) -> None:
        self.directory = directory
        self.dim = dim

    def _shards(self) -> list[Path]:
        return sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []

    def load(self, wanted: set[str]) -> dict[str, np.ndarray]:
        """The cached vectors of the hashes in ``wanted`` (unreadable shards are skipped)."""
        found: dict[str, np.ndarray] = {}
        for meta in self._shards():
            try:
                hashes = json.loads(meta.read_text(encoding="utf-8"))
                matrix = np.load(meta.with_suffix(".npy"), allow_pickle=False)
            except (OSError, ValueError):
                continue
            if matrix.ndim != 2 or matrix.shape != (len(hashes), self.dim):
                continue
            for h, row in zip(hashes, matrix, strict=True):
                if h in wanted:
                    found[h] = row
        return found

    def append(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        if not len(hashes):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = self.directory / uuid.uuid4().hex
        tmp = name.with_suffix(".npy.tmp")
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(vectors, dtype=np.float32))
        tmp.replace(name.with_suffix(".npy"))
        atomic_write_text(name.with_suffix(".json"), json.dumps(list(hashes)))

    def compact(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Keep exactly these vectors: one new shard, then the old ones go."""
        old = self._shards()
        self.append(hashes, vectors)
        keep = {p.stem for p in self._shards()} - {p.stem for p in old}
        for p in self.directory.glob("*"):
            if p.name.split(".")[0] not in keep:
                p.unlink(missing_ok=True)
