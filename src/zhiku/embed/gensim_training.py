"""What Word2Vec and Doc2Vec share: deterministic gensim training on the KB's cached tokens, and
the plumbing of an embedder that owns a model trained that way.

gensim loads only inside the training functions; a trained model is kept as plain files by its own
class (``WordVectors``, ``Doc2VecModel``), so querying never needs pickle.
"""

from __future__ import annotations

import uuid
import zlib
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np

from zhiku.embed.base import Embedder, l2_normalize
from zhiku.errors import IndexError_
from zhiku.types import Corpus


def stable_hash(text: str) -> int:
    """gensim seeds every word's starting vector with ``hashfxn(word + seed)``.

    Its default is Python's ``hash``, which changes with PYTHONHASHSEED in every process, so even
    ``workers=1`` and a fixed seed would train a different model each run. crc32 does not.
    """
    return zlib.crc32(text.encode("utf-8"))


class PassCounter:
    """The training corpus as a re-iterable that reports progress.

    gensim reads the corpus once to build the vocabulary and once per epoch; ``progress`` receives
    the number of sentences read since its last call, so a caller can map ``passes * len`` to a bar.
    """

    def __init__(
        self, sentences: Sequence[Any], progress: Callable[[int], None] | None, every: int = 1000
    ) -> None:
        self.sentences = sentences
        self.progress = progress
        self.every = every

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self) -> Iterator[Any]:
        pending = 0
        for s in self.sentences:
            yield s
            pending += 1
            if self.progress and pending >= self.every:
                self.progress(pending)
                pending = 0
        if self.progress and pending:
            self.progress(pending)


def model_settings(
    *,
    dim: int = 100,
    window: int = 5,
    min_count: int = 3,
    epochs: int = 5,
    negative: int = 5,
    sample: float = 1e-3,
    seed: int = 1,
    **_: Any,
) -> dict[str, Any]:
    """The settings that define a trained model (a change means training again); other options
    (workers, pooling, the index's) are ignored here."""
    return {
        "dim": dim,
        "window": window,
        "min_count": min_count,
        "epochs": epochs,
        "negative": negative,
        "sample": sample,
        "seed": seed,
    }


def gensim_options(settings: Mapping[str, Any], workers: int) -> dict[str, Any]:
    """The constructor arguments Word2Vec and Doc2Vec share (negative sampling, crc32 seeding)."""
    return {
        "vector_size": settings["dim"],
        "window": settings["window"],
        "min_count": settings["min_count"],
        "negative": settings["negative"],
        "hs": 0,
        "sample": settings["sample"],
        "workers": workers,
        "seed": settings["seed"],
        "epochs": settings["epochs"],
        "hashfxn": stable_hash,
    }


def train_passes(
    model: Any, corpus: PassCounter, epochs: int, progress: Callable[[int], None] | None
) -> bool:
    """Build the vocabulary, then train; False when no word is frequent enough to learn (the
    progress bar is finished anyway)."""
    model.build_vocab(corpus)
    if len(model.wv):
        model.train(corpus, total_examples=model.corpus_count, epochs=epochs)
        return True
    if progress:
        progress(len(corpus) * epochs)
    return False


def finish(vectors: np.ndarray, normalize: bool) -> np.ndarray:
    """float32, and unit length when asked (a zero row, "no known word", stays zero)."""
    return l2_normalize(vectors) if normalize else np.asarray(vectors, dtype=np.float32)


class TrainedModel(Protocol):
    @property
    def vocabulary_size(self) -> int: ...

    def save(self, directory: Path) -> None: ...


ModelT = TypeVar("ModelT", bound=TrainedModel)


class GensimEmbedder(Embedder, Generic[ModelT]):
    """An embedder whose model gensim trains on the KB's tokens (``fit``), saved as plain files.

    A second level under ``Embedder`` on purpose: Word2Vec and Doc2Vec differ only in how they
    train, store and apply their model, and everything around the model is written once here.
    """

    trainable = True
    title: ClassVar[str] = "gensim"  # the model's name in messages ("Word2Vec")

    def __init__(
        self,
        tokenizer: Callable[[str], list[str]],
        variant: str,
        *,
        workers: int = 2,
        normalize: bool = True,
        **options: Any,
    ) -> None:
        self.tokenizer = tokenizer
        self.variant = variant  # the method kind, recorded with the settings ("w2v-sg")
        self.settings = model_settings(**options)  # what defines the model (not workers: speed only)
        self.workers = workers
        self.normalized = normalize
        self.dim = int(self.settings["dim"])
        self.model: ModelT | None = None

    @abstractmethod
    def train(self, corpus: Corpus, progress: Callable[[int], None] | None) -> ModelT:
        """A new model trained on the corpus's tokens."""

    @abstractmethod
    def read_model(self, directory: Path) -> ModelT:
        """The model ``save_model`` wrote into ``directory``."""

    def training_settings(self) -> dict[str, Any]:
        return {"kind": self.variant, **self.settings}

    def fit(self, corpus: Corpus, progress: Callable[[int], None] | None = None) -> None:
        self.model_id = uuid.uuid4().hex  # a new model: indexes built with another one are stale
        self.model = self.train(corpus, progress)

    def save_model(self, directory: Path) -> None:
        self.trained().save(directory)

    def load_model(self, directory: Path) -> None:
        self.model = self.read_model(directory)

    def vocabulary_size(self) -> int:
        return int(self.trained().vocabulary_size)

    def trained(self) -> ModelT:
        if self.model is None:
            raise IndexError_(
                f"the {self.title} model is not trained yet", "Build the method first: `zhiku build`"
            )
        return self.model

    def finished(
        self, vectors: np.ndarray, progress: Callable[[int], None] | None = None, done: int = 0
    ) -> np.ndarray:
        """The embedder's output: float32, unit length if asked; ``done`` rows reported to ``progress``."""
        if progress:
            progress(done)
        return finish(vectors, self.normalized)
