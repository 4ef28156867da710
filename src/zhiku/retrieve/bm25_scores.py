"""A BM25 index saved by bm25s, searched with numpy alone.

bm25s builds the index (``retrieve/methods/bm25.py``), but a search needs only its saved arrays:
the per-(token, chunk) BM25 scores as a CSC matrix (``data``, ``indices``, ``indptr``) and, for
BM25L and BM25+, the score of a token's absence. Importing bm25s to read them costs a one-off
``zhiku search`` 0.2-0.6 s: it imports scipy.sparse, whose array-API shim walks numpy's namespace
and so imports numpy.f2py, numpy.testing and charset_normalizer, and tqdm.auto, which imports
asyncio. Here the arrays are memory-mapped as bm25s maps them and summed as bm25s sums them (one
``np.add.at`` per query token, in query order, in the index's dtype), so the scores are bm25s's,
bit for bit: ``tests/unit/test_bm25_scores.py`` compares them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: bm25s's variants that add a score for each query token a chunk lacks
NONOCCURRENCE = ("bm25l", "bm25+")


class SavedScores:
    """``get_scores(token ids)`` of a saved bm25s index, as ``bm25s.BM25.get_scores`` gives them."""

    def __init__(
        self,
        data: np.ndarray,
        indices: np.ndarray,
        indptr: np.ndarray,
        num_docs: int,
        dtype: np.dtype,
        int_dtype: np.dtype,
        nonoccurrence: np.ndarray | None,
    ) -> None:
        self.data, self.indices, self.indptr = data, indices, indptr
        self.num_docs, self.dtype, self.int_dtype = num_docs, dtype, int_dtype
        self.nonoccurrence = nonoccurrence

    @classmethod
    def load(cls, directory: Path) -> SavedScores:
        """The index bm25s saved in ``directory`` (its file names), memory-mapped: the matrix stays
        in the page cache, shared by every process on the KB."""
        params = json.loads((directory / "params.index.json").read_text(encoding="utf-8"))

        def array(name: str) -> np.ndarray:
            return np.load(directory / f"{name}.index.npy", allow_pickle=False, mmap_mode="r")

        nonoccurrence = None
        if params.get("method") in NONOCCURRENCE:
            nonoccurrence = array("nonoccurrence_array")
        return cls(
            array("data.csc"),
            array("indices.csc"),
            array("indptr.csc"),
            int(params["num_docs"]),
            np.dtype(params.get("dtype", "float32")),
            np.dtype(params.get("int_dtype", "int32")),
            nonoccurrence,
        )

    def get_scores(self, token_ids: list[int]) -> np.ndarray:
        ids = np.asarray(token_ids, dtype=self.int_dtype)
        if int(ids.max(initial=0)) >= len(self.indptr) - 1:
            raise ValueError("a query token id is outside the index")  # a bug: ids come from its vocab
        starts, ends = self.indptr[ids], self.indptr[ids + 1]
        scores = np.zeros(self.num_docs, dtype=self.dtype)
        for start, end in zip(starts, ends, strict=True):
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        if self.nonoccurrence is not None:
            scores += self.nonoccurrence[ids].sum()
        return scores
