"""Word vectors as plain data: words, their vectors, corpus counts and document frequencies.

Apart from ``word2vec.py`` (which trains them with gensim) so the embedder contract in ``base.py``
can name the type without importing the trainer: no import circle through ``embed/``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def document_frequencies(tokens: Sequence[Sequence[str]], index: dict[str, int]) -> np.ndarray:
    df = np.zeros(len(index), dtype=np.int64)
    for toks in tokens:
        for t in set(toks):
            i = index.get(t)
            if i is not None:
                df[i] += 1
    return df


@dataclass
class WordVectors:
    """A trained vocabulary: words, their vectors, corpus counts and document frequencies."""

    words: list[str]
    vectors: np.ndarray  # (V, dim) float32
    counts: np.ndarray  # (V,) occurrences in the corpus
    df: np.ndarray  # (V,) chunks that contain the word
    n_docs: int
    index: dict[str, int] = field(init=False)
    _unit: np.ndarray | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    @property
    def vocabulary_size(self) -> int:
        return len(self.words)

    # -- storage (plain .npy + .json) -------------------------------------------------------------
    def save(self, directory: Path) -> None:
        np.save(directory / "word_vectors.npy", self.vectors.astype(np.float32))
        data = {
            "words": self.words,
            "counts": self.counts.tolist(),
            "df": self.df.tolist(),
            "n_docs": self.n_docs,
        }
        (directory / "vocabulary.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> WordVectors:
        data = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
        vectors = np.load(directory / "word_vectors.npy", allow_pickle=False)
        return cls(
            data["words"],
            vectors,
            np.asarray(data["counts"], dtype=np.int64),
            np.asarray(data["df"], dtype=np.int64),
            int(data["n_docs"]),
        )

    # -- the word explorer ----------------------------------------------------------------------
    @property
    def unit(self) -> np.ndarray:
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            self._unit = (self.vectors / norms).astype(np.float32)
        return self._unit

    def vector(self, word: str) -> np.ndarray:
        return self.vectors[self.index[word]]

    def similarity(self, a: str, b: str) -> float:
        return float(self.unit[self.index[a]] @ self.unit[self.index[b]])

    def most_similar(
        self, positive: Sequence[str], negative: Sequence[str] = (), n: int = 10, exclude: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        """Cosine neighbours of mean(positive) - mean(negative) over unit vectors (3CosAdd, as gensim).

        The input words themselves are never returned (else "king" would be its own best answer).
        """
        u = self.unit
        target = u[[self.index[w] for w in positive]].sum(0)
        if negative:
            target = target - u[[self.index[w] for w in negative]].sum(0)
        norm = np.linalg.norm(target)
        if norm == 0:
            return []
        sims = u @ (target / norm)
        skip = {self.index[w] for w in (*positive, *negative, *exclude) if w in self.index}
        want = min(len(self.words), n + len(skip))
        top = (
            np.argpartition(-sims, want - 1)[:want] if want < len(self.words) else np.arange(len(self.words))
        )
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(self.words[i], float(sims[i])) for i in top if i not in skip][:n]

    def closest_spellings(self, word: str, n: int = 5) -> list[str]:
        """Known words that look like ``word``: for "unknown word" messages."""
        close = difflib.get_close_matches(word, self.words, n=n, cutoff=0.5)
        if len(close) < n:
            # Chinese words that merely contain a character of the query read better than nothing.
            chars = set(word)
            shared = [w for w in self.words if chars & set(w) and w not in close]
            shared.sort(key=lambda w: -self.counts[self.index[w]])
            close += shared[: n - len(close)]
        return close
