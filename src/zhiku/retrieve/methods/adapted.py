"""``adapted``: a vector method searched with adapted query vectors (``zhiku tune adapter``).

The base method (any vector method of the KB: e5, MiniLM, remote, Word2Vec) is resolved by name and
keeps its index; only the query side changes: the base embedder's query vector goes through the
adapter saved in ``models/<name>/`` before the base index is searched. Nothing is re-embedded, so
the adapted method is as fresh as its base.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from zhiku.errors import ConfigError
from zhiku.retrieve.base import Method, MethodOptions, methods
from zhiku.types import Hit


class AdaptedOptions(MethodOptions):
    base: str = Field("dense", description="the vector method whose index and embedder are used")
    model: str | None = Field(None, description="folder of the adapter (default: models/<this method>)")


@methods.register("adapted")
class AdaptedMethod(Method):
    kind = "adapted"
    Options: ClassVar[type[MethodOptions]] = AdaptedOptions
    options: AdaptedOptions
    indexed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._adapter: Any = None

    def parts(self) -> list[str]:
        return [self.options.base]

    def adapter_dir(self) -> Path:
        return Path(self.options.model).expanduser() if self.options.model else self.ctx.models_dir

    def _base(self) -> Any:
        base = self.ctx.resolve(self.options.base)
        if not base.vectors:
            raise ConfigError(
                f"method {self.name!r}: base {self.options.base!r} is not a vector method",
                f"Set [methods.{self.name}.options] base to a dense, remote or w2v method",
            )
        return base

    def search(self, query: str, k: int) -> list[Hit]:
        return next(self.search_many([query], k))

    def search_many(self, queries: list[str], k: int) -> Iterator[list[Hit]]:
        from zhiku.retrieve.adapter_model import Adapter

        base = self._base()
        if self._adapter is None:
            self._adapter = Adapter.load(self.adapter_dir())
        vectors = self._adapter.apply(base.embedder.embed_queries(queries))
        for hits in base.search_vectors(queries, vectors, k):
            yield [h.with_(method=self.name) for h in hits]
