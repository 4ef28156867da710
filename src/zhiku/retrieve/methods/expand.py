"""Query expansion: BM25 plus the query words' nearest neighbours in the KB's own Word2Vec.

Paraphrased questions defeat keyword search: a user types "老板" where the law says "用人单位".
A Word2Vec trained on the corpus knows which corpus words occur in the same contexts, so each
query word brings its closest neighbours along, each scored by BM25 and added with a lower weight
(``weight × similarity``) than the words the user typed.

A composite method (no index of its own): it uses a built ``bm25`` and a built ``w2v-*`` method of
the same KB, so it works by name (``--method bm25-expand``, ``zhiku search --expand``) without
building anything twice.
"""

from __future__ import annotations

from pydantic import Field

from zhiku.errors import ConfigError
from zhiku.retrieve.base import Method, MethodOptions, methods
from zhiku.types import Hit


class ExpandOptions(MethodOptions):
    of: str = Field("bm25", description="the bm25 method that scores the expanded query")
    model: str = Field("w2v-sg", description="the word2vec method (w2v-sg or w2v-cbow) that finds neighbours")
    neighbours: int = Field(3, ge=1, le=50, description="neighbours added per query word")
    weight: float = Field(0.3, gt=0, le=1, description="weight of a neighbour, times its cosine similarity")
    min_similarity: float = Field(
        0.5, ge=-1, le=1, description="neighbours less similar than this are not added"
    )


@methods.register("bm25-expand")
class ExpandedBM25Method(Method):
    kind = "bm25-expand"
    Options = ExpandOptions
    options: ExpandOptions
    indexed = False

    def parts(self) -> list[str]:
        return [self.options.of, self.options.model]

    def expansion(self, query: str) -> dict[str, float]:
        """The neighbour words this query gains, with their weights (the typed words are not among them)."""
        model = self.ctx.resolve(self.options.model)
        if not model.has_word_vectors:
            raise ConfigError(
                f"method {self.name!r}: {self.options.model!r} has no word vectors",
                f"Set [methods.{self.name}.options] model to a w2v-sg or w2v-cbow method",
            )
        wv = model.word_vectors()
        o = self.options
        tokens = list(dict.fromkeys(self.ctx.tokenizer(query)))
        extra: dict[str, float] = {}
        for t in tokens:
            if t not in wv:
                continue
            for word, sim in wv.most_similar([t], n=o.neighbours, exclude=tokens):
                if sim >= o.min_similarity:
                    extra[word] = max(extra.get(word, 0.0), o.weight * sim)
        return extra

    def search(self, query: str, k: int) -> list[Hit]:
        bm25 = self.ctx.resolve(self.options.of)
        if not bm25.supports_expansion:
            raise ConfigError(
                f"method {self.name!r}: {self.options.of!r} is not a bm25 method",
                f"Set [methods.{self.name}.options] of to a bm25 method",
            )
        extra = self.expansion(query)
        return [
            h.with_(method=self.name, extra={"expansion": extra})
            for h in bm25.search_expanded(query, extra, k)
        ]
