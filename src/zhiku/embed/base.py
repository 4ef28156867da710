"""The embedder contract: one abstract method, capability attributes, helpers in the base class.

Every embedder (fake hashing, sentence-transformers, Word2Vec/Doc2Vec, prompt-LLM, remote servers)
passes the same conformance suite in tests/contract/test_embedders.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from zhiku.registry import Registry

if TYPE_CHECKING:
    from zhiku.embed.word_vectors import WordVectors
    from zhiku.types import Corpus


class Embedder(ABC):
    """Turns texts into float32 vectors of a fixed ``dim``.

    ``normalized``: vectors come out with unit L2 norm (inner product == cosine).
    ``languages``: the languages the model understands (``{"en"}`` for all-MiniLM-L6-v2), so a KB
    can decline to build a dense index that would be useless on its text.
    ``query_prefix``/``doc_prefix``: models like e5 and bge want different inputs for each side.
    ``trainable``: learns from the KB's own corpus (Word2Vec, Doc2Vec): ``fit`` it, or
    ``load_model`` a fitted one, before embedding (``zhiku.embed.trained`` keeps the model current).
    ``has_word_vectors``: ``word_vectors()`` gives per-word vectors (word explorer, query expansion).
    """

    name: ClassVar[str] = "embedder"
    dim: int
    normalized: bool = True
    batch_size: int = 32
    languages: frozenset[str] = frozenset({"zh", "en"})
    model_id: str = ""
    trainable: ClassVar[bool] = False
    has_word_vectors: ClassVar[bool] = False

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Embed one batch of documents. Returns float32 of shape (len(texts), dim)."""

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Queries default to the document path; models with query prompts override this."""
        return self.embed(texts)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for batch in _batches(texts, self.batch_size):
            parts.append(np.asarray(self.embed_batch(batch), dtype=np.float32))
            if progress:
                progress(len(batch))
        return np.vstack(parts)

    def describe(self) -> dict[str, Any]:
        """What a manifest records so a stale or mismatched index is detected."""
        return {"embedder": self.name, "model": self.model_id, "dim": self.dim, "normalized": self.normalized}

    def embed_corpus(
        self, corpus: Corpus, index_dir: Path, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Vectors of the corpus's chunks, in its order. Trainable embedders use the cached tokens
        and may leave in ``index_dir`` what queries need later (``attach`` reads it back)."""
        return self.embed(corpus.index_texts(), progress)

    def attach(self, index_dir: Path) -> None:  # noqa: B027  (an optional hook: most have nothing to read)
        """Read back what ``embed_corpus`` left in an index folder (nothing, by default)."""

    def preload(self) -> None:  # noqa: B027  (an optional hook: most load fast or on first use)
        """Queries are coming: start loading the model in the background (nothing, by default)."""

    # -- trainable embedders ----------------------------------------------------------------------
    def training_settings(self) -> dict[str, Any]:
        """The settings that define the trained model (a change means training again)."""
        return {}

    def fit(self, corpus: Corpus, progress: Callable[[int], None] | None = None) -> None:
        raise NotImplementedError(f"the {self.name} embedder is not trained on a corpus")

    def save_model(self, directory: Path) -> None:
        raise NotImplementedError(f"the {self.name} embedder has no model of its own")

    def load_model(self, directory: Path) -> None:
        raise NotImplementedError(f"the {self.name} embedder has no model of its own")

    def vocabulary_size(self) -> int:
        return 0

    def word_vectors(self) -> WordVectors:
        raise NotImplementedError(f"the {self.name} embedder has no word vectors")


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


#: name -> factory(options: dict) -> Embedder
embedders: Registry[Callable[..., Embedder]] = Registry("embedder")
