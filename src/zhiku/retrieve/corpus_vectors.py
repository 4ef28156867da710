"""Methods whose vectors are learned from the KB's own corpus: w2v-cbow, w2v-sg, d2v-dm, d2v-dbow.

They need no model download, run on any CPU and learn the user's own vocabulary, in any language.
Training costs time, so the default KB configuration has none of them: ``zhiku build --method
w2v-sg`` trains one and records it in zhiku.toml (then ingests keep it current), and naming an
unbuilt one in a search trains it on demand. Building one trains its model (or reuses it, see
below), turns every chunk into a vector and puts the vectors in the same vector-index layer as
``dense`` (``faiss-flat`` by default, ``faiss-hnsw`` optional), ranked by cosine or L2 distance.

The trained model lives in ``models/<name>/`` with a manifest (training settings, the corpus
fingerprint, vocabulary size, training time). A build reuses it when both the fingerprint and the
training settings still match (a changed pooling, metric or index does not retrain); otherwise it
trains again, so a model is never silently older than its corpus: after an ingest or a delete the
index is stale by the usual fingerprint check and the next build retrains. ``request_retrain``
(``zhiku build --retrain``) forces a new model. With ``workers = 1`` training is deterministic.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from zhiku.embed.base import Embedder
from zhiku.errors import IndexError_
from zhiku.index.base import indexes
from zhiku.retrieve.base import Corpus, MethodOptions, methods
from zhiku.retrieve.dense import VectorMethod
from zhiku.store.files import atomic_write_json, staged_dir

MODEL_FORMAT = 1


class CorpusVectorOptions(MethodOptions):
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
    index: str = "faiss-flat"
    index_options: dict[str, Any] = Field(
        default_factory=dict, description="e.g. m, ef_search for faiss-hnsw"
    )


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


#: options that change the model itself; the rest (pooling, metric, index, workers) only change
#: how its vectors are used, so changing them rebuilds the index from the same model.
_TRAINING = ("dim", "window", "min_count", "epochs", "negative", "sample", "seed", "dbow_words")


class _QueryEmbedder(Embedder):
    """Queries go through the KB's tokenizer, then the model, exactly as the chunks did."""

    name = "corpus-trained"
    normalized = False

    def __init__(
        self,
        encode: Callable[[list[list[str]]], np.ndarray],
        tokenizer: Callable[[str], list[str]],
        dim: int,
        model_id: str,
    ) -> None:
        self.encode, self.tokenizer, self.dim, self.model_id = encode, tokenizer, dim, model_id

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode([self.tokenizer(t) for t in texts])


class TrainedVectorMethod(VectorMethod):
    """Base of the corpus-trained methods: model reuse and retraining, chunk vectors, the index."""

    Options: ClassVar[type[MethodOptions]] = CorpusVectorOptions
    options: CorpusVectorOptions
    model_family: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        self.metric, self.index_kind, self.index_options = o.metric, o.index, o.index_options
        self._retrain = False
        self.model_manifest: dict[str, Any] = {}
        self.loaded_model: Any = None

    # -- what subclasses provide -------------------------------------------------------------------
    def train(self, corpus: Corpus, progress: Callable[[int], None] | None) -> Any:
        raise NotImplementedError

    def save_model(self, model: Any, directory: Path) -> None:
        raise NotImplementedError

    def load_model(self, directory: Path) -> Any:
        raise NotImplementedError

    def vocabulary_size(self, model: Any) -> int:
        raise NotImplementedError

    def chunk_vectors(self, model: Any, corpus: Corpus, out_dir: Path) -> np.ndarray:
        """One vector per chunk of ``corpus``, in its order; may save what queries need in ``out_dir``."""
        raise NotImplementedError

    def query_encoder(self, model: Any, index_dir: Path) -> Callable[[list[list[str]]], np.ndarray]:
        """Token lists -> vectors, the way ``chunk_vectors`` made them (``index_dir`` holds its extras)."""
        raise NotImplementedError

    # -- the contract ------------------------------------------------------------------------------
    def training_settings(self) -> dict[str, Any]:
        o = self.options.model_dump(mode="json")
        return {"kind": self.kind, **{k: o[k] for k in _TRAINING if k in o}}

    def training_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the trainer: the settings that define the model, plus workers."""
        settings = self.training_settings()
        del settings["kind"]
        return {**settings, "workers": self.options.workers}

    def request_retrain(self) -> None:
        """The next build trains a new model even if the saved one is still current."""
        self._retrain = True

    def build(
        self,
        corpus: Corpus,
        out_dir: Path,
        previous: Path | None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        model, manifest, trained = self._model_for(corpus, progress)
        vectors = self._finish(self.chunk_vectors(model, corpus, out_dir))
        _load_index_modules()
        index = indexes.get(self.index_kind)(vectors.shape[1], self.metric, **self.index_options)
        keep = np.abs(vectors).sum(1) > 0  # a chunk with no known word matches nothing, rather than anything
        index.add([cid for cid, ok in zip(corpus.ids, keep, strict=True) if ok], vectors[keep])
        index.save(out_dir)
        desc = {"embedder": self.kind, "model": manifest["model_id"], "dim": int(vectors.shape[1])}
        (out_dir / "embedder.json").write_text(json.dumps(desc, sort_keys=True), encoding="utf-8")
        self._index, self.model_manifest, self.loaded_model = index, manifest, model
        self._embedder = _QueryEmbedder(
            self._finisher(self.query_encoder(model, out_dir)),
            self.ctx.tokenizer,
            desc["dim"],
            manifest["model_id"],
        )
        return {
            **index.describe(),
            "model_id": manifest["model_id"],
            "vocabulary": manifest["vocabulary"],
            "trained": trained,
            "training_seconds": manifest["training_seconds"],
            "chunks_without_vector": int((~keep).sum()),
        }

    def load(self, directory: Path) -> None:
        desc = json.loads((directory / "embedder.json").read_text(encoding="utf-8"))
        manifest = self.read_model_manifest()
        try:
            if manifest is None or manifest.get("model_id") != desc["model"]:
                raise KeyError("model_id")
            model = self.load_model(self.ctx.models_dir)
        except (OSError, ValueError, KeyError) as e:
            raise IndexError_(
                f"the {self.model_family} model of method {self.name!r} is missing, unreadable or was "
                "retrained after its index was built",
                f"Rebuild it: `zhiku build --method {self.name} --retrain`",
            ) from e
        self._embedder = _QueryEmbedder(
            self._finisher(self.query_encoder(model, directory)),
            self.ctx.tokenizer,
            int(desc["dim"]),
            desc["model"],
        )
        _load_index_modules()
        self._index = indexes.get(self.index_kind).load(
            directory, int(desc["dim"]), self.metric, **self.index_options
        )
        self.model_manifest = manifest
        self.loaded_model = model

    # -- the trained model -------------------------------------------------------------------------
    def read_model_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.ctx.models_dir / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def _model_for(
        self, corpus: Corpus, progress: Callable[[int], None] | None
    ) -> tuple[Any, dict[str, Any], bool]:
        manifest = self.read_model_manifest()
        if (
            not self._retrain
            and manifest is not None
            and manifest.get("format") == MODEL_FORMAT
            and manifest.get("fingerprint") == corpus.fingerprint
            and manifest.get("settings") == self.training_settings()
        ):
            try:
                model = self.load_model(self.ctx.models_dir)
            except (OSError, ValueError, KeyError):
                pass  # unreadable: train a new one
            else:
                if progress:
                    progress(len(corpus))
                return model, manifest, False
        t0 = time.perf_counter()
        model = self.train(corpus, _scaled(progress, len(corpus), self.options.epochs + 1))
        seconds = time.perf_counter() - t0
        manifest = {
            "format": MODEL_FORMAT,
            "model_id": uuid.uuid4().hex,
            "method": self.name,
            "kind": self.kind,
            "settings": self.training_settings(),
            "workers": self.options.workers,
            "fingerprint": corpus.fingerprint,
            "chunks": len(corpus),
            "vocabulary": self.vocabulary_size(model),
            "training_seconds": round(seconds, 3),
            "trained_at": time.time(),
            "gensim": _gensim_version(),
        }
        with staged_dir(self.ctx.models_dir) as tmp:
            self.save_model(model, tmp)
            atomic_write_json(tmp / "manifest.json", manifest)
        self._retrain = False
        return model, manifest, True

    def _finish(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.options.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            vectors = vectors / norms
        return vectors

    def _finisher(
        self, encode: Callable[[list[list[str]]], np.ndarray]
    ) -> Callable[[list[list[str]]], np.ndarray]:
        return lambda tokens: self._finish(encode(tokens))


class Word2VecMethod(TrainedVectorMethod):
    Options = Word2VecOptions
    options: Word2VecOptions
    model_family = "Word2Vec"
    skip_gram: ClassVar[bool] = True

    def train(self, corpus: Corpus, progress: Callable[[int], None] | None) -> Any:
        from zhiku.embed.word2vec import train_word2vec

        return train_word2vec(corpus.tokens, sg=self.skip_gram, progress=progress, **self.training_kwargs())

    def save_model(self, model: Any, directory: Path) -> None:
        model.save(directory)

    def load_model(self, directory: Path) -> Any:
        from zhiku.embed.word2vec import WordVectors

        return WordVectors.load(directory)

    def vocabulary_size(self, model: Any) -> int:
        return len(model)

    def _pooler(self, model: Any, component: np.ndarray | None = None) -> Any:
        from zhiku.embed.word2vec import SentencePooler

        return SentencePooler(model, self.options.pooling, self.options.sif_a, component)

    def chunk_vectors(self, model: Any, corpus: Corpus, out_dir: Path) -> np.ndarray:
        pooler = self._pooler(model)
        matrix = pooler.pool_corpus(corpus.tokens)
        if pooler.component is not None:
            np.save(out_dir / "sif_component.npy", pooler.component)
        return matrix  # type: ignore[no-any-return]

    def query_encoder(self, model: Any, index_dir: Path) -> Callable[[list[list[str]]], np.ndarray]:
        path = index_dir / "sif_component.npy"
        component = np.load(path, allow_pickle=False) if path.exists() else None
        return self._pooler(model, component).pool  # type: ignore[no-any-return]

    @property
    def word_vectors(self) -> Any:
        """The trained :class:`~zhiku.embed.word2vec.WordVectors` (for the word explorer and expansion)."""
        if self.loaded_model is None:
            self.loaded_model = self.load_model(self.ctx.models_dir)
        return self.loaded_model


class Doc2VecMethod(TrainedVectorMethod):
    Options = Doc2VecOptions
    options: Doc2VecOptions
    model_family = "Doc2Vec"
    distributed_memory: ClassVar[bool] = True

    def train(self, corpus: Corpus, progress: Callable[[int], None] | None) -> Any:
        from zhiku.embed.doc2vec import train_doc2vec

        return train_doc2vec(
            corpus.tokens, corpus.ids, dm=self.distributed_memory, progress=progress, **self.training_kwargs()
        )

    def save_model(self, model: Any, directory: Path) -> None:
        model.save(directory)

    def load_model(self, directory: Path) -> Any:
        from zhiku.embed.doc2vec import Doc2VecModel

        return Doc2VecModel.load(directory)

    def vocabulary_size(self, model: Any) -> int:
        return int(model.vocabulary_size)

    def chunk_vectors(self, model: Any, corpus: Corpus, out_dir: Path) -> np.ndarray:
        # The model was trained on exactly this corpus (same fingerprint), but look vectors up by
        # chunk id anyway: a paragraph vector must never land on another chunk.
        return model.vectors_of(corpus.ids)  # type: ignore[no-any-return]

    def query_encoder(self, model: Any, index_dir: Path) -> Callable[[list[list[str]]], np.ndarray]:
        epochs = self.options.infer_epochs
        return lambda tokens: model.infer_many(tokens, epochs)  # type: ignore[no-any-return]


@methods.register("w2v-cbow")
class Word2VecCBOW(Word2VecMethod):
    """Word2Vec, CBOW: the context predicts the word (fast; smooths over rare words)."""

    kind = "w2v-cbow"
    skip_gram = False


@methods.register("w2v-sg")
class Word2VecSkipGram(Word2VecMethod):
    """Word2Vec, skip-gram: the word predicts its context (slower; better for rare words)."""

    kind = "w2v-sg"
    skip_gram = True


@methods.register("d2v-dm")
class Doc2VecDM(Doc2VecMethod):
    """Doc2Vec PV-DM: the paragraph vector and the context words predict the next word."""

    kind = "d2v-dm"
    distributed_memory = True


@methods.register("d2v-dbow")
class Doc2VecDBOW(Doc2VecMethod):
    """Doc2Vec PV-DBOW: the paragraph vector alone predicts its words."""

    kind = "d2v-dbow"
    distributed_memory = False


#: kinds of this module that have word vectors (for `zhiku words` and query expansion)
WORD2VEC_KINDS = ("w2v-sg", "w2v-cbow")


def _scaled(progress: Callable[[int], None] | None, total: int, passes: int) -> Callable[[int], None] | None:
    """Map "sentences read over all passes" onto the build bar's "chunks" total."""
    if progress is None:
        return None
    done = [0, 0]  # sentences read, bar units reported

    def advance(n: int) -> None:
        done[0] += n
        target = min(total, done[0] // max(passes, 1))
        if target > done[1]:
            progress(target - done[1])
            done[1] = target

    return advance


def _load_index_modules() -> None:
    import zhiku.index.faiss  # noqa: F401
    import zhiku.index.flat  # noqa: F401


def _gensim_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gensim")
    except PackageNotFoundError:  # metadata missing in odd installs: the manifest just says so
        return "unknown"


def mark_for_retraining(kb: Any, names: Sequence[str] | None = None) -> list[str]:
    """Mark the corpus-trained methods among ``names`` (default: all configured) for retraining."""
    chosen = []
    for name in names or kb.method_names():
        m = kb.method(name)
        if isinstance(m, TrainedVectorMethod):
            m.request_retrain()
            chosen.append(name)
    return chosen
