"""TF-IDF over the KB's cached tokens: sparse vectors, ranked by cosine similarity.

The counting view of "similar words appear in similar contexts": a chunk is its bag of words, each
weighted by how often it occurs there (TF, or 1 + log TF with ``sublinear_tf``) times how rare it
is in the corpus (smoothed IDF, as scikit-learn: log((1 + N) / (1 + df)) + 1); rows are L2
normalised, so a query's dot product with them is its cosine similarity.
Stored as plain files, never pickle: ``matrix.npz`` (scipy's CSR arrays),
``idf.npy``, ``vocab.json`` and ``ids.json``; tokens come from the catalog, so jieba never runs again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from zhiku.retrieve.base import Corpus, Method, MethodOptions, methods
from zhiku.types import Hit


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


class TfidfOptions(MethodOptions):
    sublinear_tf: bool = Field(False, description="weigh a word 1 + log(tf) times instead of tf times")
    min_df: int = Field(1, ge=1, description="ignore words found in fewer chunks than this")
    max_df: float = Field(1.0, gt=0, le=1, description="ignore words found in more than this share of chunks")


@methods.register("tfidf")
class TfidfMethod(Method):
    kind = "tfidf"
    Options = TfidfOptions
    options: TfidfOptions
    ids_file = "ids.json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._matrix: Any = None  # (n_chunks, V) CSR, rows unit length
        self._idf = np.zeros(0, dtype=np.float32)
        self._vocab: dict[str, int] = {}
        self._ids: list[str] = []

    def build(
        self,
        corpus: Corpus,
        out_dir: Path,
        progress: Callable[[int], None] | None = None,
        phase: Callable[[str, int], None] | None = None,
    ) -> dict[str, Any]:
        from scipy import sparse

        o = self.options
        n = len(corpus)
        df: dict[str, int] = {}
        for toks in corpus.tokens:
            for t in set(toks):
                df[t] = df.get(t, 0) + 1
        top = o.max_df * n
        words = sorted(w for w, d in df.items() if d >= o.min_df and d <= top)
        vocab = {w: i for i, w in enumerate(words)}
        dfs = np.asarray([df[w] for w in words], dtype=np.float64)
        idf = (np.log((1 + n) / (1 + dfs)) + 1).astype(np.float32)
        matrix = weigh(count_matrix(corpus.tokens, vocab), idf, o.sublinear_tf)
        if progress:
            progress(n)
        sparse.save_npz(out_dir / "matrix.npz", matrix, compressed=False)
        np.save(out_dir / "idf.npy", idf)
        (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (out_dir / "ids.json").write_text(json.dumps(corpus.ids), encoding="utf-8")
        self._matrix, self._idf, self._vocab, self._ids = matrix, idf, vocab, list(corpus.ids)
        return {"vocabulary": len(vocab), "nonzeros": int(matrix.nnz)}

    def load(self, directory: Path) -> None:
        from scipy import sparse

        self._matrix = sparse.load_npz(directory / "matrix.npz").tocsr()  # load_npz never unpickles
        self._idf = np.load(directory / "idf.npy", allow_pickle=False)
        self._vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        self._ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))

    def query_scores(self, query: str) -> np.ndarray | None:
        """Cosine similarity of every chunk with ``query``, or None when no query word is indexed.

        A word of a synonym group (``tokenizer.synonyms``) counts as the group, as in ``bm25``: each
        chunk gets the best of the group's words (each weighted by its own IDF), at full weight, once.
        The query vector's norm is that of the query with each group's first indexed word (the typed
        one when it is indexed), so without synonyms this is exactly the cosine similarity.
        """
        terms = self.ctx.tokenizer.query_terms(query)
        indexed = [[alt for alt in alts if any(t in self._vocab for t in alt)] for alts in terms.groups]
        indexed = [alts for alts in indexed if alts]
        own = terms.plain + [t for alts in indexed for t in alts[0]]
        rows = [own, terms.plain] + [list(alt) for alts in indexed for alt in alts]
        weights = tf_idf(count_matrix(rows, self._vocab), self._idf, self.options.sublinear_tf)
        norm = float(row_norms(weights[0])[0])
        if norm == 0:
            return None  # no query word occurs in the corpus: nothing is similar
        if not indexed:
            return np.asarray((self._matrix @ weights[0].T).todense()).ravel() / norm
        # One sparse product for the plain words and every alternative: (chunks, 1 + alternatives).
        dots = np.asarray((self._matrix @ weights[1:].T).todense())
        scores = dots[:, 0].copy()
        col = 1
        for alts in indexed:
            scores += dots[:, col : col + len(alts)].max(axis=1)
            col += len(alts)
        return scores / norm

    def search(self, query: str, k: int) -> list[Hit]:
        if not self._ids:
            return []
        scores = self.query_scores(query)
        if scores is None:
            return []
        k = min(k, len(self._ids))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self._ids[i], float(scores[i]), self.name) for i in top if scores[i] > 0]
