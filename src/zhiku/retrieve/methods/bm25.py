"""BM25 over the KB's cached tokens (jieba for Chinese, stemmed words for English), with bm25s.

The index is saved as bm25s's plain .npy/.json files (never pickle), plus our ids.json; tokens
come from the catalog, so a rebuild after an ingest never re-runs jieba.

``index = "milvus"`` keeps the same tokens in Milvus's full-text search instead (a Milvus Lite file
in the index folder, or a server by ``index_options = { uri = "http://…" }``, token from
``ZHIKU_MILVUS_TOKEN``), ranked by Milvus's BM25 with the same k1 and b: see index/milvus_text.py.
Two things stay in-process only: a synonym group is summed there (not its best word), and query
expansion's weighted terms need bm25s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from zhiku.errors import ConfigError
from zhiku.retrieve.base import Corpus, EngineSide, Method, MethodOptions, methods
from zhiku.text.token_rows import TokenIdRows
from zhiku.types import Hit

if TYPE_CHECKING:
    from zhiku.index.milvus_text import MilvusText


class BM25Options(MethodOptions):
    k1: float = Field(1.2, gt=0)
    b: float = Field(0.75, ge=0, le=1)
    variant: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    index: Literal["bm25s", "milvus"] = Field("bm25s", description="in-process bm25s, or Milvus full text")
    index_options: dict[str, Any] = Field(
        default_factory=dict, description="milvus: uri (a server; default a Lite file), collection"
    )


@methods.register("bm25")
class BM25Method(Method):
    kind = "bm25"
    Options = BM25Options
    options: BM25Options
    supports_expansion = True
    ids_file = "ids.json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._model: Any = None
        self._ids: list[str] = []
        self._vocab: dict[str, int] = {}
        self._milvus: MilvusText | None = None
        if self.options.index == "milvus":
            self._check_milvus()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self.options.index == "bm25s" and not self.options.index_options:
            # an index built before the option existed stays fresh
            d.pop("index")
            d.pop("index_options")
        return d

    def _check_milvus(self) -> None:
        o = self.options
        if o.variant != "lucene":
            raise ConfigError(
                f"method {self.name!r}: Milvus ranks by Lucene's BM25, not {o.variant!r}",
                f"Remove variant from [methods.{self.name}.options], or set index = 'bm25s'",
            )
        unknown = set(o.index_options) - {"uri", "collection"}
        if unknown:
            raise ConfigError(
                f"method {self.name!r}: unknown Milvus option(s) {', '.join(sorted(unknown))}",
                f"Fix [methods.{self.name}.options] index_options: uri and collection are known",
            )

    def build(
        self,
        corpus: Corpus,
        out_dir: Path,
        progress: Callable[[int], None] | None = None,
        phase: Callable[[str, int], None] | None = None,
    ) -> dict[str, Any]:
        o = self.options
        if o.index == "milvus":
            from zhiku.index.milvus_text import MilvusText

            index = MilvusText(k1=o.k1, b=o.b, **o.index_options)
            index.save(out_dir, corpus.ids, corpus.tokens)
            (out_dir / "ids.json").write_text(json.dumps(corpus.ids), encoding="utf-8")
            return {"index": "milvus", "collection": index.collection, "uri": o.index_options.get("uri")}
        import bm25s

        model = bm25s.BM25(k1=o.k1, b=o.b, method=o.variant)
        vocab: dict[str, int] = {}
        # bm25s wants every document to have at least one token id; an empty chunk gets a
        # placeholder token that no query can produce. Ids are held as one int32 array (see
        # zhiku.text.token_rows: lists of ints were ≈ 5 KB a chunk).
        ids = TokenIdRows.build(corpus.tokens, vocab, empty="\x00")
        model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        model.save(str(out_dir), show_progress=False)
        (out_dir / "ids.json").write_text(json.dumps(corpus.ids), encoding="utf-8")
        (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        return {"vocabulary": len(vocab)}

    def load(self, directory: Path) -> None:
        if self.options.index == "milvus":
            from zhiku.index.milvus_text import MilvusText

            if self._milvus is not None:
                self._milvus.close()
            self._milvus = MilvusText.load(directory, self.options.k1, self.options.b)
            self._ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
            return
        from zhiku.retrieve.bm25_scores import SavedScores

        # bm25s's files read without importing bm25s (see bm25_scores.py), memory-mapped.
        self._model = SavedScores.load(directory)
        self._ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
        self._vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))

    def _ids_of(self, tokens: Iterable[str]) -> list[int]:
        return [self._vocab[t] for t in tokens if t in self._vocab]

    def query_scores(self, query: str) -> np.ndarray | None:
        """BM25 of every chunk for ``query``, or None when no query word is in the index.

        A word of a synonym group (the KB's ``tokenizer.synonyms``) is scored as the group: each
        chunk gets the best BM25 among the group's words, the typed one included, at full weight.
        The file says the words are interchangeable, so a chunk that uses the other word matches as
        if it used the typed one; taking the best (not the sum) counts the group once, so a chunk
        that uses two of its words, or a group of many words, does not outweigh the rest of the query
        (what Lucene's SynonymQuery does by treating synonyms as one term). bm25s sums the scores of
        the token ids it is given, so each alternative is scored on its own.
        """
        terms = self.ctx.tokenizer.query_terms(query)
        qids = self._ids_of(terms.plain)
        scores = self._model.get_scores(qids) if qids else None
        for alternatives in terms.groups:
            best = None
            for alt in alternatives:
                ids = self._ids_of(alt)
                if ids:
                    s = self._model.get_scores(ids)
                    best = s if best is None else np.maximum(best, s)
            if best is not None:
                scores = best if scores is None else scores + best
        return scores

    def _milvus_terms(self, query: str) -> list[str]:
        terms = self.ctx.tokenizer.query_terms(query)
        return [*terms.plain, *(t for alternatives in terms.groups for alt in alternatives for t in alt)]

    def engine_side(self, built: dict[str, Any] | None = None) -> EngineSide | None:
        o = self.options
        if o.index != "milvus":
            return None
        return EngineSide("milvus", o.index_options.get("uri"), "words", o.k1, o.b)

    def query_words(self, query: str) -> list[str]:
        return self._milvus_terms(query)

    def search_many(self, queries: list[str], k: int) -> Iterator[list[Hit]]:
        if self._milvus is None:
            yield from super().search_many(queries, k)
            return
        rows = self._milvus.search_many([self._milvus_terms(q) for q in queries], k)
        for row in rows:
            yield [Hit(cid, score, self.name) for cid, score in row if score > 0]

    def search(self, query: str, k: int) -> list[Hit]:
        if self._milvus is not None:
            return next(self.search_many([query], k))
        if not self._ids:
            return []
        scores = self.query_scores(query)
        if scores is None:
            return []
        return _top_hits(scores, self._ids, k, self.name)

    def search_expanded(self, query: str, extra: dict[str, float], k: int) -> list[Hit]:
        """BM25 of the query plus ``weight × BM25`` of each extra term (query expansion).

        bm25s sums per query token, so each extra term is scored alone and added with its weight.
        """
        if self._milvus is not None:
            raise ConfigError(
                f"method {self.name!r} keeps BM25 in Milvus, which cannot weight expansion terms",
                f"Expand an in-process bm25 method (without index = 'milvus' in [methods.{self.name}])",
            )
        if not self._ids:
            return []
        scores = self.query_scores(query)
        if scores is None:
            scores = np.zeros(len(self._ids), dtype=np.float32)
        for term, weight in extra.items():
            if term in self._vocab:
                scores = scores + weight * self._model.get_scores([self._vocab[term]])
        return _top_hits(scores, self._ids, k, self.name)


def _top_hits(scores: np.ndarray, ids: list[str], k: int, method: str) -> list[Hit]:
    """The ``k`` best chunks with a positive score, best first; equal scores in chunk order."""
    return [Hit(ids[i], float(scores[i]), method) for i in top_rows(scores, k)]


#: top_rows samples every n-th score, n = chunks // SAMPLE, to bound the k-th best score from below
SAMPLE = 16384


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` best positive scores, best first; among equal scores the lower row first.

    At a million chunks a common query word touches a third of them, and a partition over those
    was most of a query's time (benchmarks/million.py). The k-th best of an evenly spaced sample
    is a lower bound of the k-th best of all, so the rows scoring at least that are every row
    that can make the top k (ties included): a few hundred, chosen by one comparison pass."""
    floor = 0.0
    if len(scores) >= 4 * SAMPLE:
        sample = scores[:: len(scores) // SAMPLE]
        sample = sample[sample > 0]
        if len(sample) >= k:
            floor = float(np.partition(sample, len(sample) - k)[len(sample) - k])
    cand = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    s = scores[cand]
    if k < len(cand):
        # every row tied with the k-th best stays in; the sort below decides among them by row
        kth = s[np.argpartition(-s, k - 1)[k - 1]]
        keep = s >= kth
        cand, s = cand[keep], s[keep]
    return cand[np.argsort(-s, kind="stable")[:k]]
