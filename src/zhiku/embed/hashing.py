"""A deterministic, dependency-free embedder: hashed character n-grams.

For tests and demos of the plumbing (no model download, same vector on every machine). It is not a
semantic model, but texts that share words do land near each other, so rankings are meaningful
enough to test with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from zhiku.embed.base import Embedder, embedders, l2_normalize
from zhiku.text.normalise import fold

#: n-grams whose slot is remembered; past this the memo starts again (a bound on its memory)
MEMO_SIZE = 2_000_000


class _Slots(dict[str, int]):
    """n-gram -> ``2 × dimension + (1 if the sign is negative)``, hashed once per n-gram.

    Hashing every n-gram with blake2b was most of the build at a million chunks; a text repeats
    few distinct n-grams across a corpus, so each is hashed once and looked up after."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def __missing__(self, gram: str) -> int:
        v = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")
        slot = 2 * (v % self.dim) + (0 if (v >> 32) & 1 else 1)
        if len(self) >= MEMO_SIZE:
            self.clear()
        self[gram] = slot
        return slot


class HashingEmbedder(Embedder):
    name = "hashing"

    def __init__(
        self, dim: int = 256, ngram: int = 2, languages: Sequence[str] | None = None, **_: Any
    ) -> None:
        self.dim = dim
        self.ngram = ngram
        self.model_id = f"hashing-{dim}-{ngram}"
        self._slots = _Slots(dim)
        if languages:  # tests stand it in for a one-language model (MiniLM reads only English)
            self.languages = frozenset(languages)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        lookup = self._slots.__getitem__
        for row, text in enumerate(texts):
            t = "".join(fold(text).split())
            slots: list[int] = []
            for n in range(1, self.ngram + 1):
                slots += map(lookup, [t[i : i + n] for i in range(len(t) - n + 1)])
            if not slots:
                continue
            s = np.asarray(slots, dtype=np.int64)
            # Each n-gram adds ±1 to its dimension. The counts are small integers, exact in float32
            # whatever the order, so these sums equal adding one n-gram at a time.
            plus = np.bincount(s[(s & 1) == 0] >> 1, minlength=self.dim)
            minus = np.bincount(s[(s & 1) == 1] >> 1, minlength=self.dim)
            out[row] = plus - minus
        return l2_normalize(out)


embedders.add("hashing", HashingEmbedder)
