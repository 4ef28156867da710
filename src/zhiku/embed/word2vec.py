"""Word2Vec trained on the knowledge base's own chunks, and sentence vectors pooled from it.

Training runs gensim (CBOW: the context predicts the word; skip-gram: the word predicts its
context) over the catalog's cached tokens, so jieba never runs again. What is kept is plain data,
never pickle: the word vectors (``word_vectors.npy``) and the vocabulary with corpus counts and
document frequencies (``vocabulary.json``). Querying needs numpy only; gensim loads for training.

A chunk's vector pools its words' vectors: ``mean``; ``tfidf`` (each occurrence weighted by the
word's IDF); or ``sif`` (Arora et al., 2017: weight a / (a + p(w)), then remove the projection on
the first principal component of the corpus's sentence vectors). Queries are pooled the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from zhiku.embed.base import embedders
from zhiku.embed.gensim_training import GensimEmbedder, PassCounter, finish, gensim_options, train_passes
from zhiku.embed.word_vectors import WordVectors, document_frequencies
from zhiku.types import Corpus

Pooling = Literal["mean", "tfidf", "sif"]


def train_word2vec(
    sentences: Sequence[list[str]],
    settings: Mapping[str, Any],
    *,
    sg: bool,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> WordVectors:
    """Train Word2Vec on token lists with ``settings`` (``model_settings``); ``progress`` gets
    sentences read, over (1 + epochs) passes."""
    from gensim.models import Word2Vec

    model = Word2Vec(sg=int(sg), **gensim_options(settings, workers))
    train_passes(model, PassCounter(sentences, progress), settings["epochs"], progress)
    words = list(model.wv.index_to_key)
    vectors = np.asarray(model.wv.vectors, dtype=np.float32).reshape(len(words), settings["dim"])
    counts = np.asarray([model.wv.get_vecattr(w, "count") for w in words], dtype=np.int64)
    index = {w: i for i, w in enumerate(words)}
    return WordVectors(words, vectors, counts, document_frequencies(sentences, index), len(sentences))


class SentencePooler:
    """Turns token lists into sentence vectors from word vectors (mean, IDF-weighted mean or SIF)."""

    def __init__(
        self,
        wv: WordVectors,
        pooling: Pooling = "sif",
        sif_a: float = 1e-3,
        component: np.ndarray | None = None,
    ) -> None:
        self.wv = wv
        self.pooling = pooling
        self.component = component  # SIF's first principal component, fitted on the corpus
        if pooling == "sif":
            p = wv.counts / max(int(wv.counts.sum()), 1)
            self.weights = (sif_a / (sif_a + p)).astype(np.float32)
        elif pooling == "tfidf":
            self.weights = (np.log((1 + wv.n_docs) / (1 + wv.df)) + 1).astype(np.float32)
        else:
            self.weights = np.ones(len(wv), dtype=np.float32)

    def pool(self, tokens: Sequence[Sequence[str]]) -> np.ndarray:
        """(len(tokens), dim) float32; a sentence with no known word gets the zero vector."""
        from scipy import sparse

        index = self.wv.index
        rows: list[int] = []
        cols: list[int] = []
        for r, toks in enumerate(tokens):
            for t in toks:
                i = index.get(t)
                if i is not None:
                    rows.append(r)
                    cols.append(i)
        shape = (len(tokens), len(self.wv))
        w = self.weights[np.asarray(cols, dtype=np.int64)] if cols else np.zeros(0, np.float32)
        m = sparse.csr_matrix((w, (rows, cols)), shape=shape, dtype=np.float32)  # duplicates are summed
        out = np.asarray(m @ self.wv.vectors, dtype=np.float32)
        # mean and SIF divide by the number of known words (SIF as in the paper), tfidf by the weights.
        if self.pooling == "tfidf":
            denom = np.asarray(m.sum(axis=1)).ravel()
        else:
            denom = np.bincount(np.asarray(rows, dtype=np.int64), minlength=len(tokens)).astype(np.float32)
        nonzero = denom > 0
        out[nonzero] /= denom[nonzero, None]
        return self._remove_component(out)

    def pool_corpus(self, tokens: Sequence[Sequence[str]]) -> np.ndarray:
        """Pool the corpus; for SIF, fit the principal component on it first and remove it."""
        self.component = None
        out = self.pool(tokens)
        if self.pooling == "sif" and self.fit_component(out) is not None:
            out = self._remove_component(out)
        return out

    def _remove_component(self, out: np.ndarray) -> np.ndarray:
        if self.component is None:
            return out
        nonzero = np.abs(out).sum(1) > 0  # keep "no known word" rows exactly zero
        out[nonzero] -= np.outer(out[nonzero] @ self.component, self.component)
        return out

    def fit_component(self, matrix: np.ndarray) -> np.ndarray | None:
        """SIF: the first principal (singular) direction of the corpus's sentence vectors.

        As in the paper's code, the matrix is not centred: the common direction it removes is the
        one that frequent, meaningless words add to every sentence.
        """
        rows = matrix[np.abs(matrix).sum(1) > 0].astype(np.float64)
        if len(rows) <= matrix.shape[1]:
            # With fewer sentences than dimensions the "common direction" is mostly one of the
            # sentences themselves; removing it would erase that sentence, not noise.
            return None
        _, vecs = np.linalg.eigh(rows.T @ rows)
        self.component = vecs[:, -1].astype(np.float32)
        return self.component


class Word2VecEmbedder(GensimEmbedder[WordVectors]):
    """Word2Vec trained on the KB's tokens; a text's vector pools its words' vectors.

    Chunks are pooled from the catalog's cached tokens; queries go through the KB's tokenizer, then
    the same pooling, exactly as the chunks did. SIF's corpus component is saved in the index
    folder (it belongs to the pooling, not to the model).
    """

    name = "word2vec"
    title = "Word2Vec"
    has_word_vectors = True

    def __init__(
        self,
        *,
        tokenizer: Callable[[str], list[str]],
        sg: bool = True,
        epochs: int = 10,
        pooling: Pooling = "sif",
        sif_a: float = 1e-3,
        **options: Any,
    ) -> None:
        """``options``: the model's settings (``model_settings``: dim, window, min_count, …),
        ``workers`` and ``normalize``."""
        super().__init__(tokenizer, "w2v-sg" if sg else "w2v-cbow", epochs=epochs, **options)
        self.sg, self.pooling, self.sif_a = sg, pooling, sif_a
        self.pooler: SentencePooler | None = None

    def train(self, corpus: Corpus, progress: Callable[[int], None] | None) -> WordVectors:
        return train_word2vec(
            corpus.tokens, self.settings, sg=self.sg, workers=self.workers, progress=progress
        )

    def read_model(self, directory: Path) -> WordVectors:
        return WordVectors.load(directory)

    def word_vectors(self) -> WordVectors:
        return self.trained()

    def embed_corpus(
        self, corpus: Corpus, index_dir: Path, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.pooler = SentencePooler(self.trained(), self.pooling, self.sif_a)
        matrix = self.pooler.pool_corpus(corpus.tokens)
        if self.pooler.component is not None:
            np.save(index_dir / "sif_component.npy", self.pooler.component)
        return self.finished(matrix, progress, len(corpus))

    def attach(self, index_dir: Path) -> None:
        path = index_dir / "sif_component.npy"
        component = np.load(path, allow_pickle=False) if path.exists() else None
        self.pooler = SentencePooler(self.trained(), self.pooling, self.sif_a, component)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if self.pooler is None:
            self.pooler = SentencePooler(self.trained(), self.pooling, self.sif_a)
        return finish(self.pooler.pool([self.tokenizer(t) for t in texts]), self.normalized)


embedders.add("word2vec", Word2VecEmbedder)
