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


class HashingEmbedder(Embedder):
    name = "hashing"

    def __init__(
        self, dim: int = 256, ngram: int = 2, languages: Sequence[str] | None = None, **_: Any
    ) -> None:
        self.dim = dim
        self.ngram = ngram
        self.model_id = f"hashing-{dim}-{ngram}"
        if languages:  # tests stand it in for a one-language model (MiniLM reads only English)
            self.languages = frozenset(languages)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            t = "".join(fold(text).split())
            for n in range(1, self.ngram + 1):
                for i in range(len(t) - n + 1):
                    h = hashlib.blake2b(t[i : i + n].encode(), digest_size=8).digest()
                    v = int.from_bytes(h, "little")
                    out[row, v % self.dim] += 1.0 if (v >> 32) & 1 else -1.0
        return l2_normalize(out)


embedders.add("hashing", HashingEmbedder)
