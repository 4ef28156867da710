"""Doc2Vec paragraph vectors (PV-DM, PV-DBOW) trained on the knowledge base's chunks, with gensim.

Each chunk is one tagged document, so its trained paragraph vector is its index vector. A query
is *inferred*: a fresh paragraph vector is trained against the frozen model. gensim's own
``infer_vector`` starts from a vector seeded by Python's ``hash`` of the text (different in every
process) and draws negatives from a shared random state (different on every call), so the same
query could rank differently twice; ``infer`` below runs the same gensim routines from a
crc32-seeded start and a freshly seeded random state, so one query always gets one vector.

Stored without pickle (gensim's ``save`` pickles the model): inference needs only the word
vectors, the output weights (``syn1neg``), the negative-sampling table and the down-sampling
thresholds, kept as ``.npy`` + a JSON vocabulary; ``load`` puts them back into an untrained
gensim model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.base import embedders
from zhiku.embed.gensim_training import (
    GensimEmbedder,
    PassCounter,
    finish,
    gensim_options,
    stable_hash,
    train_passes,
)
from zhiku.types import Corpus


class Doc2VecModel:
    """A trained Doc2Vec: the chunks' paragraph vectors, and inference for new texts."""

    def __init__(
        self, model: Any, tags: list[str], doc_vectors: np.ndarray, settings: dict[str, Any]
    ) -> None:
        self._model = model
        # infer() reseeds the model's shared random state: one inference at a time keeps it
        # deterministic when a web server searches from several threads.
        self._lock = threading.Lock()
        self.tags = tags  # one per trained document (the chunk ids)
        self.doc_vectors = doc_vectors  # (len(tags), dim), row i is tags[i]
        self.settings = settings

    def vectors_of(self, tags: Sequence[str]) -> np.ndarray:
        """The trained vectors of ``tags`` (KeyError for a tag that was not trained)."""
        row = {t: i for i, t in enumerate(self.tags)}
        return self.doc_vectors[[row[t] for t in tags]]

    @property
    def vocabulary_size(self) -> int:
        return len(self._model.wv)

    @property
    def dim(self) -> int:
        return int(self.settings["dim"])

    def infer(self, words: Sequence[str], epochs: int | None = None) -> np.ndarray:
        """A paragraph vector for ``words``: the same words give the same vector, in any process.

        Follows ``Doc2Vec.infer_vector`` (gensim 4.x) with a deterministic start and random state.
        """
        from gensim.models.doc2vec_inner import train_document_dbow, train_document_dm

        m = self._model
        words = [w for w in words if w in m.wv.key_to_index]
        dim = self.dim
        if not words:
            return np.zeros(dim, dtype=np.float32)
        seed = int(self.settings["seed"])
        once = np.random.Generator(np.random.SFC64(stable_hash(" ".join(words)) ^ seed))
        vec = ((once.random(dim, dtype=np.float32) - 0.5) / dim).reshape(1, dim)
        lockf = np.ones(1, dtype=np.float32)
        work = np.zeros(m.layer1_size, dtype=np.float32)
        neu1 = np.zeros(m.layer1_size, dtype=np.float32)
        epochs = epochs or m.epochs
        alpha, min_alpha = m.alpha, m.min_alpha
        delta = (alpha - min_alpha) / max(epochs - 1, 1)
        frozen = {"learn_words": False, "learn_hidden": False, "doctag_vectors": vec, "doctags_lockf": lockf}
        with self._lock:
            m.random = np.random.RandomState(seed)  # negatives and window shrinking: same draws every call
            for _ in range(epochs):
                if m.dm:
                    train_document_dm(m, words, [0], alpha, work, neu1, **frozen)
                else:
                    train_document_dbow(m, words, [0], alpha, work, **frozen)
                alpha -= delta
        return vec[0].copy()

    def infer_many(self, token_lists: Sequence[Sequence[str]], epochs: int | None = None) -> np.ndarray:
        if not token_lists:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.infer(t, epochs) for t in token_lists]).astype(np.float32)

    # -- storage -------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        m = self._model
        words = list(m.wv.index_to_key)
        np.save(directory / "word_vectors.npy", np.asarray(m.wv.vectors, dtype=np.float32))
        np.save(directory / "doc_vectors.npy", self.doc_vectors.astype(np.float32))
        np.save(directory / "syn1neg.npy", np.asarray(m.syn1neg, dtype=np.float32))
        np.save(directory / "cum_table.npy", np.asarray(m.cum_table))
        np.save(directory / "sample_int.npy", np.asarray(m.wv.expandos["sample_int"]))
        counts = [int(m.wv.get_vecattr(w, "count")) for w in words]
        (directory / "vocabulary.json").write_text(
            json.dumps({"words": words, "counts": counts}, ensure_ascii=False), encoding="utf-8"
        )
        (directory / "doc2vec.json").write_text(json.dumps(self.settings, sort_keys=True), encoding="utf-8")
        (directory / "tags.json").write_text(json.dumps(self.tags), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> Doc2VecModel:
        settings = json.loads((directory / "doc2vec.json").read_text(encoding="utf-8"))
        vocab = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
        model = _untrained(settings)
        wv = model.wv
        words = vocab["words"]
        if words:
            wv.add_vectors(words, np.load(directory / "word_vectors.npy", allow_pickle=False))
        wv.allocate_vecattrs(attrs=["count", "sample_int"], types=[np.int64, np.uint32])
        wv.expandos["count"][:] = np.asarray(vocab["counts"], dtype=np.int64)
        wv.expandos["sample_int"][:] = np.load(directory / "sample_int.npy", allow_pickle=False)
        wv.vectors_lockf = np.ones(1, dtype=np.float32)
        model.syn1neg = np.load(directory / "syn1neg.npy", allow_pickle=False)
        model.cum_table = np.load(directory / "cum_table.npy", allow_pickle=False)
        tags = json.loads((directory / "tags.json").read_text(encoding="utf-8"))
        return cls(model, tags, np.load(directory / "doc_vectors.npy", allow_pickle=False), settings)


def _untrained(s: dict[str, Any]) -> Any:
    from gensim.models.doc2vec import Doc2Vec

    return Doc2Vec(dm=int(s["dm"]), dbow_words=int(s["dbow_words"]), **gensim_options(s, s["workers"]))


def train_doc2vec(
    sentences: Sequence[list[str]],
    tags: Sequence[str],
    settings: Mapping[str, Any],
    *,
    dm: bool,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> Doc2VecModel:
    """Train on token lists, one document each, named by ``tags``, with ``settings``
    (``model_settings`` and ``dbow_words``); ``progress`` as for ``train_word2vec``."""
    from gensim.models.doc2vec import TaggedDocument

    settings = {"dm": dm, "dbow_words": False, **settings, "workers": workers}
    model = _untrained(settings)
    corpus = PassCounter([TaggedDocument(words, [i]) for i, words in enumerate(sentences)], progress)
    if train_passes(model, corpus, settings["epochs"], progress):
        docs = np.asarray(model.dv.vectors, dtype=np.float32)
    else:
        docs = np.zeros((len(sentences), settings["dim"]), dtype=np.float32)
    # A chunk whose words are all rarer than min_count trained nothing: a zero vector says "no idea"
    # rather than its random starting point.
    known = set(model.wv.key_to_index)
    for i, words in enumerate(sentences):
        if not known.intersection(words):
            docs[i] = 0.0
    return Doc2VecModel(model, list(tags), docs, settings)


class Doc2VecEmbedder(GensimEmbedder[Doc2VecModel]):
    """Doc2Vec trained on the KB's chunks: a chunk's vector is its trained paragraph vector, a
    query's is inferred (deterministically) against the frozen model."""

    name = "doc2vec"
    title = "Doc2Vec"

    def __init__(
        self,
        *,
        tokenizer: Callable[[str], list[str]],
        dm: bool = True,
        epochs: int = 20,
        dbow_words: bool = False,
        infer_epochs: int | None = None,
        **options: Any,
    ) -> None:
        """``options``: the model's settings (``model_settings``: dim, window, min_count, …),
        ``workers`` and ``normalize``."""
        super().__init__(tokenizer, "d2v-dm" if dm else "d2v-dbow", epochs=epochs, **options)
        self.settings["dbow_words"] = dbow_words
        self.dm, self.infer_epochs = dm, infer_epochs

    def train(self, corpus: Corpus, progress: Callable[[int], None] | None) -> Doc2VecModel:
        return train_doc2vec(
            corpus.tokens, corpus.ids, self.settings, dm=self.dm, workers=self.workers, progress=progress
        )

    def read_model(self, directory: Path) -> Doc2VecModel:
        return Doc2VecModel.load(directory)

    def embed_corpus(
        self, corpus: Corpus, index_dir: Path, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        # The model was trained on exactly this corpus (same fingerprint), but look vectors up by
        # chunk id anyway: a paragraph vector must never land on another chunk.
        return self.finished(self.trained().vectors_of(corpus.ids), progress, len(corpus))

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        tokens = [self.tokenizer(t) for t in texts]
        return finish(self.trained().infer_many(tokens, self.infer_epochs), self.normalized)


embedders.add("doc2vec", Doc2VecEmbedder)
