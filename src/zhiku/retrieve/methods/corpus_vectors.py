"""Methods whose vectors are learned from the KB's own corpus: w2v-cbow, w2v-sg, d2v-dm, d2v-dbow.

They need no model download, run on any CPU and learn the user's own vocabulary, in any language.
Training costs time, so the default KB configuration has none of them: ``zhiku build --method
w2v-sg`` trains one and records it in zhiku.toml (then ingests keep it current), and naming an
unbuilt one in a search trains it on demand. Building one trains its model (or reuses it, see
below), turns every chunk into a vector and puts the vectors in the same vector-index layer as
``dense`` (``faiss-flat`` by default, ``faiss-hnsw`` optional), ranked by cosine or L2 distance.
Each kind is a ``VectorMethod`` whose embedder (``embed/word2vec.py``, ``embed/doc2vec.py``) is
trainable: ``embed/trained.py`` keeps its model current.

The trained model lives in ``models/<name>/`` with a manifest (training settings, the corpus
fingerprint, vocabulary size, training time). A build reuses it when both the fingerprint and the
training settings still match (a changed pooling, metric or index does not retrain); otherwise it
trains again, so a model is never silently older than its corpus: after an ingest or a delete the
index is stale by the usual fingerprint check and the next build retrains. ``request_retrain``
(``zhiku build --retrain``) forces a new model. With ``workers = 1`` training is deterministic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from zhiku.retrieve.base import MethodOptions, methods
from zhiku.retrieve.methods.vector import VectorMethod, VectorOptions


class CorpusVectorOptions(VectorOptions):
    dim: int = Field(100, ge=2, le=2000, description="vector size")
    window: int = Field(5, ge=1, description="context words on each side")
    min_count: int = Field(3, ge=1, description="words rarer than this in the corpus are ignored")
    epochs: int = Field(5, ge=1, description="passes over the corpus")
    negative: int = Field(5, ge=1, description="negative samples per positive one")
    sample: float = Field(1e-3, ge=0, description="down-sampling threshold for frequent words")
    workers: int = Field(
        2, ge=1, description="training threads; 1 (with a seed) makes training deterministic"
    )
    seed: int = 1
    metric: Literal["cosine", "l2"] = "cosine"
    normalize: bool = Field(True, description="unit-length vectors (with l2, distances fall in 0..2)")


class Word2VecOptions(CorpusVectorOptions):
    # 10 rather than gensim's 5: on the laws QA set (benchmarks/word_vectors.py) skip-gram with 10
    # epochs ranked better (MRR@10 0.447 vs 0.418), and 6 M characters still train in well under 2 min.
    epochs: int = Field(10, ge=1, description="passes over the corpus")
    pooling: Literal["mean", "tfidf", "sif"] = Field(
        "sif", description="how word vectors make a chunk vector"
    )
    sif_a: float = Field(1e-3, gt=0, description="SIF's a in a / (a + p(word))")


class Doc2VecOptions(CorpusVectorOptions):
    epochs: int = Field(20, ge=1, description="passes over the corpus")
    infer_epochs: int | None = Field(
        None, ge=1, description="epochs to infer a query's vector (default: epochs)"
    )
    dbow_words: bool = Field(False, description="PV-DBOW only: also train word vectors (slower)")


def gensim_spec(options: CorpusVectorOptions, embedder: str, **setting: bool) -> tuple[str, dict[str, Any]]:
    """The embedder a corpus-vector kind stands for: its options plus the one setting that tells
    the kinds of a family apart (settings, not a class per variant: ``sg``, ``dm``)."""
    o = options.model_dump(exclude={"metric", "index", "index_options"})
    return embedder, {**o, **setting}


@methods.register("w2v-cbow")
class Word2VecCBOW(VectorMethod):
    """Word2Vec, CBOW: the context predicts the word (fast; smooths over rare words)."""

    kind = "w2v-cbow"
    Options: ClassVar[type[MethodOptions]] = Word2VecOptions
    options: Word2VecOptions

    def embedder_spec(self, index_dir: Path | None) -> tuple[str, dict[str, Any]]:
        return gensim_spec(self.options, "word2vec", sg=False)


@methods.register("w2v-sg")
class Word2VecSkipGram(VectorMethod):
    """Word2Vec, skip-gram: the word predicts its context (slower; better for rare words)."""

    kind = "w2v-sg"
    Options: ClassVar[type[MethodOptions]] = Word2VecOptions
    options: Word2VecOptions

    def embedder_spec(self, index_dir: Path | None) -> tuple[str, dict[str, Any]]:
        return gensim_spec(self.options, "word2vec", sg=True)


@methods.register("d2v-dm")
class Doc2VecDM(VectorMethod):
    """Doc2Vec PV-DM: the paragraph vector and the context words predict the next word."""

    kind = "d2v-dm"
    Options: ClassVar[type[MethodOptions]] = Doc2VecOptions
    options: Doc2VecOptions

    def embedder_spec(self, index_dir: Path | None) -> tuple[str, dict[str, Any]]:
        return gensim_spec(self.options, "doc2vec", dm=True)


@methods.register("d2v-dbow")
class Doc2VecDBOW(VectorMethod):
    """Doc2Vec PV-DBOW: the paragraph vector alone predicts its words."""

    kind = "d2v-dbow"
    Options: ClassVar[type[MethodOptions]] = Doc2VecOptions
    options: Doc2VecOptions

    def embedder_spec(self, index_dir: Path | None) -> tuple[str, dict[str, Any]]:
        return gensim_spec(self.options, "doc2vec", dm=False)
