"""Embed a corpus straight into a memory-mapped ``embeddings.npy``, and fill an index from it.

The dense build used to hold every chunk's index text again, the fresh vectors, a dict of every
cached vector, their stacked matrix, a float32 copy of it and the index's normalised copy: five
copies of N × dim floats at the peak (≈ 7.5 GB at 1M chunks × 384 dims). Here vectors go to the
file as they are produced, a batch at a time; the previous build's vectors are read through a
memory map (a dict of hash -> row number, not of arrays); the index is filled a batch at a time
from the file. What stays is the index's own copy (Faiss flat or HNSW hold their vectors in RAM).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.base import Embedder
from zhiku.index.base import VectorIndex
from zhiku.retrieve.base import Corpus

BATCH = 8192  # rows embedded, copied or indexed at a time: ≈ 12 MB at 384 dims


def previous_vectors(previous: Path | None, desc: dict[str, Any]) -> tuple[dict[str, int], np.ndarray | None]:
    """(text hash -> row, memory-mapped matrix) of the last build, if it used the same embedder."""
    if previous is None:
        return {}, None
    try:
        old = json.loads((previous / "embedder.json").read_text(encoding="utf-8"))
        if old != json.loads(json.dumps(desc, sort_keys=True)):
            return {}, None  # another model: its vectors are of no use
        hashes = json.loads((previous / "embedding_hashes.json").read_text(encoding="utf-8"))
        matrix = np.load(previous / "embeddings.npy", mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return {}, None
    return {h: i for i, h in enumerate(hashes[: len(matrix)])}, matrix


def embed_to_file(
    corpus: Corpus,
    embedder: Embedder,
    previous: Path | None,
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Write one row per chunk of ``corpus`` to ``path`` (.npy); return (memory map, rows embedded)."""
    rows, old = previous_vectors(previous, embedder.describe())
    n, dim = len(corpus), embedder.dim
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    embedded = 0
    for start in range(0, n, BATCH):
        stop = min(start + BATCH, n)
        hashes = corpus.text_hashes[start:stop]
        missing = [i for i, h in enumerate(hashes) if h not in rows]
        if old is not None and len(missing) < len(hashes):
            have = [(i, rows[h]) for i, h in enumerate(hashes) if h in rows]
            out[[start + i for i, _ in have]] = old[[r for _, r in have]]
            if progress:
                progress(len(have))
        if missing:
            texts = [f"{corpus.contexts[start + i]}\n{corpus.texts[start + i]}" for i in missing]
            out[[start + i for i in missing]] = embedder.embed(texts, progress=progress)
            embedded += len(missing)
    out.flush()
    return out, embedded


def fill_index(index: VectorIndex, ids: list[str], matrix: np.ndarray) -> None:
    """Add rows a batch at a time: HNSW grows incrementally, no full normalised copy is made."""
    for start in range(0, len(ids), BATCH):
        index.add(ids[start : start + BATCH], np.asarray(matrix[start : start + BATCH]))
