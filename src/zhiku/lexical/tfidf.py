"""TF-IDF weighting as pure functions over token lists (the ``tfidf`` method uses them).

The counting view of "similar words appear in similar contexts": a chunk is its bag of words, each
weighted by how often it occurs there (TF, or 1 + log TF with ``sublinear_tf``) times how rare it
is in the corpus (smoothed IDF, as scikit-learn: log((1 + N) / (1 + df)) + 1). Rows are L2
normalised, so a query's dot product with them is its cosine similarity.

Stored as plain files, never pickle: ``matrix.npz`` (scipy's CSR arrays), ``idf.npy``,
``vocab.json`` and ``ids.json``; tokens come from the catalog, so jieba never runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def count_matrix(tokens: Sequence[Sequence[str]], vocab: dict[str, int]) -> Any:
    """(len(tokens), len(vocab)) CSR matrix of term counts; words outside ``vocab`` are dropped."""
    from scipy import sparse

    rows: list[int] = []
    cols: list[int] = []
    for r, toks in enumerate(tokens):
        for t in toks:
            c = vocab.get(t)
            if c is not None:
                rows.append(r)
                cols.append(c)
    data = np.ones(len(cols), dtype=np.float32)
    m = sparse.csr_matrix((data, (rows, cols)), shape=(len(tokens), len(vocab)), dtype=np.float32)
    m.sum_duplicates()
    return m


def tf_idf(counts: Any, idf: np.ndarray, sublinear_tf: bool) -> Any:
    """TF(-IDF) weights, not normalised."""
    m = counts.astype(np.float32, copy=True)
    if sublinear_tf:
        m.data = 1.0 + np.log(m.data)
    return m.multiply(idf[None, :]).tocsr()


def row_norms(m: Any) -> np.ndarray:
    """L2 norm of each row of a sparse matrix."""
    return np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())


def weigh(counts: Any, idf: np.ndarray, sublinear_tf: bool) -> Any:
    """TF(-IDF) weights, rows scaled to unit L2 norm (an all-zero row stays zero)."""
    m = tf_idf(counts, idf, sublinear_tf)
    norms = row_norms(m)
    norms[norms == 0] = 1.0
    from scipy import sparse

    return (sparse.diags(1.0 / norms) @ m).tocsr().astype(np.float32)
