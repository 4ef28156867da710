"""The retrieval-method contract and the method registry.

A *method* is a named way to turn a query into ranked hits: ``bm25``, ``dense``, ``hybrid``,
``w2v-sg``, ``fusion``… Every method implements ``search``; methods backed by an index also
implement ``build`` (from the corpus, into a folder) and ``load``. A KB configures several methods
side by side under names of its choice, each with a ``kind`` from this registry (one file per kind
in ``retrieve/methods/``, listed in ``zhiku.builtins``).

Capabilities are declared here, on the contract, so callers never probe with ``hasattr``:
``indexed`` (built into ``indexes/<name>/``), ``parts()`` (the methods a composite needs),
``has_word_vectors``/``word_vectors()`` (Word2Vec-backed methods), ``supports_expansion``/
``search_expanded()`` (BM25), ``trainable``/``request_retrain()`` (models trained on the corpus),
``engine_side()``/``query_words()``/``search_with_words()`` (parts a Milvus can fuse in one request).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from zhiku.config import MethodConfig, validated
from zhiku.errors import ConfigError
from zhiku.registry import Registry
from zhiku.text.tokenize import Tokenizer
from zhiku.types import Corpus, Hit

if TYPE_CHECKING:
    from zhiku.embed.word_vectors import WordVectors

__all__ = ["Corpus", "EngineSide", "Method", "MethodContext", "MethodOptions", "methods"]


class MethodOptions(BaseModel):
    """Base of each method's typed options (the ``options`` table of a method in zhiku.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class MethodContext:
    """What a method may use from its KB, and nothing else (no catalog, no config file)."""

    tokenizer: Tokenizer
    language: Callable[[], str]  # the KB's language, "zh" | "en" | "mixed" (computed on demand)
    resolve: Callable[[str], Method]  # another method of the same KB, by name, ready to search
    # a composite's parts that this KB fuses (built or built by default), for a question in a
    # language if given (see MethodSet.parts_in_use)
    parts_in_use: Callable[[str, str | None], list[str]]
    models_dir: Path  # models/<name>/: what this method trains on the corpus
    cache_dir: Path  # cache/: per-chunk vectors that survive rebuilds and interrupted builds
    cache_shared: bool = False  # the cache serves other KBs too (nothing may be removed from it)


@dataclass(frozen=True)
class EngineSide:
    """Where a part's index lives when an engine could fuse it with another part in one request
    (``retrieve/fusion.py``, ``one_engine``): a Milvus collection, and what it ranks."""

    engine: str  # "milvus"
    uri: str | None  # a server or cluster; None: a Milvus Lite file in the index folder
    role: Literal["words", "vectors"]
    k1: float = 1.2  # BM25's, for the words (a vector collection ranks its own copy of them)
    b: float = 0.75
    missing: str = ""  # vectors: why the collection cannot rank words ("" when it can)


class Method(ABC):
    kind: ClassVar[str] = "method"
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    #: built from the corpus into indexes/<name>/ (False for composites like hybrid)
    indexed: ClassVar[bool] = True
    #: BM25 can score a query plus weighted extra terms (query expansion)
    supports_expansion: ClassVar[bool] = False
    #: building takes minutes on a large KB (embedding, training): a default search does not wait
    #: for it, it searches with what is fresh and says so
    slow_to_build: ClassVar[bool] = False
    #: searches one embedder's chunk vectors in a vector index (``embedder``, ``search_vectors``,
    #: ``embeddings.npy``): a query adapter can be trained on it, ``/v1/embeddings`` can use it
    vectors: ClassVar[bool] = False
    #: fuses the ranked lists of its parts (``hybrid``, an ad-hoc ``a+b``): ``fusing_only`` applies
    fuses: ClassVar[bool] = False
    #: asks an LLM at query time (RAG-Fusion's query variants): slow, and needs a generator
    needs_llm: ClassVar[bool] = False
    #: the JSON list of chunk ids an index folder holds, in the order built (``zhiku check``
    #: compares it with the catalog); None for a kind that keeps no such list
    ids_file: ClassVar[str | None] = None
    #: its ``build`` takes ``phase`` and reports a later step through it (the vector methods'
    #: ``indexing``); False keeps a plugin's ``build(corpus, out_dir, progress)`` working unchanged
    reports_phases: ClassVar[bool] = False

    def __init__(self, name: str, options: dict[str, Any], ctx: MethodContext) -> None:
        self.name = name
        self.ctx = ctx
        self.options = validated(
            self.Options,
            options,
            f"method {name!r} ({self.kind}): option ",
            f"Fix [methods.{name}.options] in zhiku.toml",
        )

    @abstractmethod
    def search(self, query: str, k: int) -> list[Hit]:
        """Up to ``k`` hits, best first, scores higher-is-better."""

    def search_many(self, queries: list[str], k: int) -> Iterator[list[Hit]]:
        """Batch search; backends that batch natively (Faiss) override it."""
        for q in queries:
            yield self.search(q, k)

    # -- indexed methods ------------------------------------------------------------------------
    def build(
        self,
        corpus: Corpus,
        out_dir: Path,
        progress: Callable[[int], None] | None = None,
        phase: Callable[[str, int], None] | None = None,
    ) -> dict[str, Any]:
        """Write the index for ``corpus`` into ``out_dir``; return what the manifest should record.

        ``progress(n)``: n more chunks done. ``phase(label, total)``: a later step begins (the
        vector methods' ``indexing``), and ``progress`` counts its items from 0 again."""
        raise NotImplementedError(f"{self.kind} has no index to build")

    def load(self, directory: Path) -> None:
        raise NotImplementedError(f"{self.kind} has no index to load")

    def stored_ids(self, directory: Path) -> list[str] | None:
        """The chunk ids of the index saved in ``directory`` (``ids_file``), without loading it."""
        if self.ids_file is None:
            return None

        ids = json.loads((directory / self.ids_file).read_text(encoding="utf-8"))
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{self.ids_file} is not a list of chunk ids")
        return ids

    def applicable(self, language: str) -> tuple[bool, str]:
        """Whether building this method by default makes sense for a KB in ``language``, and why not."""
        return True, ""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.options.model_dump(mode="json")}

    # -- composites -----------------------------------------------------------------------------
    def parts(self) -> list[str]:
        """The other methods of the KB this one searches through (none for an indexed method)."""
        return []

    def fusing_only(self, parts: list[str]) -> MethodConfig:
        """This fusion's config with only ``parts`` (the others not built yet); ``fuses`` methods."""
        raise ConfigError(f"method {self.name!r} ({self.kind}) fuses no parts", "Name a hybrid method")

    # -- capabilities ---------------------------------------------------------------------------
    @property
    def has_word_vectors(self) -> bool:
        return False

    def word_vectors(self) -> WordVectors:
        raise ConfigError(
            f"method {self.name!r} ({self.kind}) has no word vectors",
            "Use a w2v-sg or w2v-cbow method, e.g. `zhiku build --method w2v-sg`",
        )

    def search_expanded(self, query: str, extra: dict[str, float], k: int) -> list[Hit]:
        raise ConfigError(
            f"method {self.name!r} ({self.kind}) cannot score expanded queries", "Expand a bm25 method"
        )

    @property
    def trainable(self) -> bool:
        """Trains a model on the KB's own corpus (``zhiku build --retrain`` applies)."""
        return False

    def request_retrain(self) -> None:  # noqa: B027  (only trainable methods have a model to retrain)
        """The next build trains a new model even if the saved one is still current."""

    def engine_side(self, built: dict[str, Any] | None = None) -> EngineSide | None:
        """This method's index as an engine's side of a one-request hybrid (None: in-process).

        From the loaded index, or from ``built`` (its manifest's details) without loading it."""
        return None

    def query_words(self, query: str) -> list[str]:
        """The words a ``words`` side ranks ``query`` by (its BM25's query tokens)."""
        raise ConfigError(f"method {self.name!r} ({self.kind}) ranks no words", "Use a bm25 method")

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
        """A ``vectors`` side: ``query`` ranked by its vector and by ``words`` in one request to the
        engine, fused by the engine's ``ranker`` (``fusion.one_engine`` says how); hits named ``method``."""
        raise ConfigError(
            f"method {self.name!r} ({self.kind}) cannot search words with vectors",
            "Use a vector method with index = 'milvus'",
        )

    def fusing_engine(self, sides: dict[str, EngineSide | None]) -> tuple[str, str]:
        """A fusion's engine ("zhiku" or "milvus") given its parts' sides, and why not the one asked
        for ("" when it is); ("", "") for a method that fuses nothing."""
        return "", ""

    def search_notes(self) -> list[str]:
        """What the last search did otherwise than configured (one line each), for the KB's notes."""
        return []


#: kind -> Method subclass
methods: Registry[type[Method]] = Registry("method", "retrieval method")
