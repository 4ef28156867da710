"""The retrieval-method contract and the method registry.

A *method* is a named way to turn a query into ranked hits: ``bm25``, ``dense``, ``hybrid`` and,
later, ``tfidf``, ``w2v-sg``, ``fusion``… Every method implements ``search``; methods backed by an
index also implement ``build`` (from the corpus, into a folder) and ``load``. A KB configures
several methods side by side under names of its choice, each with a ``kind`` from this registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from zhiku.errors import ConfigError
from zhiku.registry import Registry
from zhiku.text.tokenize import Tokenizer
from zhiku.types import Hit


class MethodOptions(BaseModel):
    """Base of each method's typed options (the ``options`` table of a method in zhiku.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass
class Corpus:
    """The indexable view of a KB's chunks, in a stable order, read from the catalog once."""

    ids: list[str]
    texts: list[str]  # the chunk text a person reads
    contexts: list[str]  # document title + heading path, indexed with the text
    text_hashes: list[str]
    tokens: Sequence[list[str]]  # zhiku.text.token_rows.JoinedTokens: split when read
    fingerprint: str
    language: str

    def index_texts(self) -> list[str]:
        return [f"{c}\n{t}" for c, t in zip(self.contexts, self.texts, strict=True)]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class MethodContext:
    """What a method may use from its KB, and nothing else (no catalog, no config file)."""

    tokenizer: Tokenizer
    language: Callable[[], str]  # the KB's language, "zh" | "en" | "mixed" (computed on demand)
    resolve: Callable[[str], Method]  # another method of the same KB, by name (for composites)
    models_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)


class Method(ABC):
    kind: ClassVar[str] = "method"
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    #: built from the corpus into indexes/<name>/ (False for composites like hybrid)
    indexed: ClassVar[bool] = True

    def __init__(self, name: str, options: dict[str, Any], ctx: MethodContext) -> None:
        self.name = name
        self.ctx = ctx
        try:
            self.options = self.Options.model_validate(options)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"method {name!r} ({self.kind}): option {where}: {first['msg']}",
                f"Fix [methods.{name}.options] in zhiku.toml",
            ) from e

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
        previous: Path | None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Write the index for ``corpus`` into ``out_dir``; return what the manifest should record.

        ``previous`` is the last built folder of this method (if any): reuse what is still valid
        there (cached vectors of unchanged chunks) instead of recomputing it.
        """
        raise NotImplementedError

    def load(self, directory: Path) -> None:
        raise NotImplementedError

    def applicable(self, language: str) -> tuple[bool, str]:
        """Whether building this method by default makes sense for a KB in ``language``, and why not."""
        return True, ""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.options.model_dump(mode="json")}


#: kind -> Method subclass
methods: Registry[type[Method]] = Registry("retrieval method")


def load_builtin_methods() -> None:
    """Import the modules that register the built-in methods (cheap: no heavy imports at top)."""
    import zhiku.lexical.bm25  # noqa: F401
    import zhiku.lexical.tfidf  # noqa: F401
    import zhiku.retrieve.corpus_vectors  # noqa: F401
    import zhiku.retrieve.dense  # noqa: F401
    import zhiku.retrieve.expand  # noqa: F401
    import zhiku.retrieve.hybrid  # noqa: F401
    import zhiku.retrieve.llm_dense  # noqa: F401
    import zhiku.retrieve.rag_fusion  # noqa: F401
