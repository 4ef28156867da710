"""Dense retrieval: an embedder + a vector index, with a per-chunk vector cache.

Vectors are cached by the hash of the chunk text (``embeddings.npy`` + ``embedding_hashes.json``),
so after an ingest only new or changed chunks are embedded; the index itself is rebuilt from the
cache, which also makes deletions real for backends that cannot remove ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from zhiku.embed.base import Embedder, embedders
from zhiku.index.base import Metric, VectorIndex, indexes
from zhiku.retrieve.base import Corpus, Method, MethodOptions, methods
from zhiku.retrieve.vector_build import embed_to_file, fill_index
from zhiku.types import Hit


class DenseOptions(MethodOptions):
    embedder: str = "sbert"
    model: str = "all-MiniLM-L6-v2"
    index: str = "faiss-flat"
    metric: Metric = "cosine"
    batch_size: int = Field(32, ge=1)
    max_seq_length: int | None = 256
    languages: list[str] | None = Field(None, description="languages the model understands; guessed if unset")
    query_prefix: str = ""
    doc_prefix: str = ""
    dim: int | None = Field(None, description="only for embedders whose size is chosen (hashing)")
    index_options: dict[str, Any] = Field(default_factory=dict, description="e.g. m, ef_search for faiss-hnsw")


def _load_index_modules() -> None:
    import zhiku.embed.hashing  # noqa: F401
    import zhiku.embed.sbert  # noqa: F401
    import zhiku.index.faiss  # noqa: F401
    import zhiku.index.flat  # noqa: F401
    import zhiku.index.milvus  # noqa: F401


class VectorMethod(Method):
    """Shared by every method that ranks by vectors in a ``VectorIndex`` (dense, word2vec, …).

    Subclasses provide ``make_embedder``; this class caches vectors, builds and searches the index.
    """

    metric: Metric = "cosine"
    index_kind: str = "faiss-flat"
    index_options: dict[str, Any] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None

    def make_embedder(self, corpus: Corpus | None, directory: Path | None) -> Embedder:
        raise NotImplementedError

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self.make_embedder(None, None)
        return self._embedder

    def build(self, corpus: Corpus, out_dir: Path, previous: Path | None, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        _load_index_modules()
        self._embedder = self.make_embedder(corpus, out_dir)
        desc = self._embedder.describe()
        # Streamed: vectors go to embeddings.npy as produced, the index is filled from it in batches.
        matrix, embedded = embed_to_file(
            corpus, self._embedder, previous, out_dir / "embeddings.npy", progress
        )
        (out_dir / "embedding_hashes.json").write_text(json.dumps(corpus.text_hashes), encoding="utf-8")
        (out_dir / "embedder.json").write_text(json.dumps(desc, sort_keys=True), encoding="utf-8")
        index = indexes.get(self.index_kind)(self._embedder.dim, self.metric, **self.index_options)
        fill_index(index, corpus.ids, matrix)
        del matrix
        index.save(out_dir)
        self._index = index
        return {**desc, **index.describe(), "embedded": embedded, "reused": len(corpus) - embedded}

    def load(self, directory: Path) -> None:
        _load_index_modules()
        if self._embedder is None:
            self._embedder = self.make_embedder(None, directory)
        desc = json.loads((directory / "embedder.json").read_text(encoding="utf-8"))
        self._index = indexes.get(self.index_kind).load(directory, int(desc["dim"]), self.metric, **self.index_options)

    def search(self, query: str, k: int) -> list[Hit]:
        return next(self.search_many([query], k))

    def search_many(self, queries: list[str], k: int) -> Iterator[list[Hit]]:
        assert self._index is not None, "load() or build() first"  # a bug, not user input
        vectors = self.embedder.embed_queries(queries)
        for q, v, row in zip(queries, vectors, self._index.search(vectors, k), strict=True):
            # An empty query, or one embedded as the zero vector (no known word), has no direction:
            # nothing is similar to it, so it finds nothing rather than an arbitrary order.
            found = q.strip() and v.any()
            yield [Hit(cid, score, self.name, distance=dist) for cid, score, dist in row] if found else []


def _read_cache(previous: Path, desc: dict[str, Any]) -> dict[str, np.ndarray]:
    try:
        old = json.loads((previous / "embedder.json").read_text(encoding="utf-8"))
        if old != json.loads(json.dumps(desc, sort_keys=True)):
            return {}  # another model: its vectors are of no use
        hashes = json.loads((previous / "embedding_hashes.json").read_text(encoding="utf-8"))
        matrix = np.load(previous / "embeddings.npy")
    except (OSError, ValueError, KeyError):
        return {}
    return dict(zip(hashes, matrix, strict=False))


@methods.register("dense")
class DenseMethod(VectorMethod):
    kind = "dense"
    Options = DenseOptions
    options: DenseOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        self.metric, self.index_kind, self.index_options = o.metric, o.index, o.index_options

    def make_embedder(self, corpus: Corpus | None, directory: Path | None) -> Embedder:
        _load_index_modules()
        o = self.options
        kwargs: dict[str, Any] = {
            "model": o.model, "batch_size": o.batch_size, "max_seq_length": o.max_seq_length,
            "languages": o.languages, "query_prefix": o.query_prefix, "doc_prefix": o.doc_prefix,
        }
        if o.dim:
            kwargs["dim"] = o.dim
        return embedders.get(o.embedder)(**kwargs)

    def applicable(self, language: str) -> tuple[bool, str]:
        langs = self.embedder.languages
        # A mixed KB gains from a model that reads either half; a mostly Chinese one needs Chinese.
        needed = {"zh", "en"} if language == "mixed" else {language}
        if needed & langs:
            return True, ""
        return False, (
            f"the KB is mostly {'Chinese' if language == 'zh' else 'English'} and the model "
            f"{self.embedder.model_id} only understands {', '.join(sorted(langs))}; embedding would take "
            f"long for nothing. Build it anyway with `zhiku build --method {self.name}`, or set "
            f"[methods.{self.name}.options] model = '/path/to/a/Chinese/model'"
        )
