"""The read path of a KB: search (filtered, reranked), then an answer with citations.

Hits come back attached (chunk and document filled in); a hit whose chunk was deleted since its
index was built is dropped, so nothing ever cites a ghost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from zhiku.errors import UsageError
from zhiku.retrieve.base import Method
from zhiku.types import Answer, Hit, Where

if TYPE_CHECKING:
    from zhiku.generate.base import Generator
    from zhiku.kb.core import Facade
    from zhiku.kb.methods import MethodSet

#: how many hits a filtered search fetches before filtering (it keeps the best k that pass)
FILTER_DEPTH = 200


class Searcher:
    """Searches and answers over one KB; keeps its rerankers (a model loads once per setting)."""

    def __init__(self, kb: Facade, methods: MethodSet) -> None:
        self.kb = kb
        self.methods = methods
        self._rerankers: dict[str, Any] = {}  # per setting: a model loads once, an LLM cache lives on

    def search(
        self, query: str, k: int, method: str | None, where: Where | None, rerank: str | None
    ) -> list[Hit]:
        with self.kb.catalog.one_read():
            return self._search(query, k, method, where, rerank)

    def _search(
        self, query: str, k: int, method: str | None, where: Where | None, rerank: str | None
    ) -> list[Hit]:
        kb = self.kb
        query = check_query(query, k)
        m = self.searchable(method or self.methods.default())
        if rerank is not None or kb.config.rerank.kind is not None:
            return self._search_reranked(query, k, m, rerank, where)
        if not where:
            return self.attach(self._noted(m, m.search(query, k)))
        return self._filtered(self.attach(self._noted(m, m.search(query, max(k, FILTER_DEPTH)))), where)[:k]

    def _noted(self, m: Method, hits: list[Hit]) -> list[Hit]:
        """``hits``, with what the search did otherwise than configured added to the KB's notes."""
        for note in m.search_notes():
            self.kb.note(note)
        return hits

    def searchable(self, name: str) -> Method:
        """Method ``name`` ready to search now, without building anything.

        A fusion whose part is not ready (still building, interrupted, disabled) answers with the
        parts that are, and says so in ``kb.notes``; ``kb.parts_used`` names the indexed methods
        that answer. Nothing ready at all: the error of the first part, which says why.
        """
        kb, methods = self.kb, self.methods
        kb.notes = []
        kb.parts_used = []
        m = methods.get(name)
        if m.indexed:
            kb.parts_used = [m.name]
            return kb.ready_method(name)
        if not m.fuses:  # a composite that needs every part (adapted, bm25-expand, rag-fusion)
            kb.parts_used = methods.indexed_parts(name)
            for p in kb.parts_used:
                kb.ready_method(p)  # raises, saying why, for a part that is not ready
            return kb.ready_method(name)
        ready: list[str] = []
        missing: list[str] = []
        for part in methods.parts_in_use(name):
            indexed = methods.indexed_parts(part)
            (ready if indexed and all(methods.readable(p) for p in indexed) else missing).append(part)
        language = methods.language()
        for part in m.parts():
            # A part disabled in zhiku.toml is left out, and said so where it would have applied.
            if (
                part not in methods.parts_in_use(name)
                and methods.config(part).enabled is False
                and methods.get(part).applicable(language)[0]
            ):
                kb.note(f"{part} is disabled in zhiku.toml: {name} fuses {', '.join(ready) or 'nothing'}")
        if not ready:
            return kb.ready_method(missing[0] if missing else name)  # raises: says why
        for part in ready:
            kb.parts_used += [p for p in methods.indexed_parts(part) if p not in kb.parts_used]
        for part in missing:
            why = "; ".join(methods.not_built_reason(p) for p in methods.indexed_parts(part))
            kb.note(f"{part} is not ready ({why}): {name} searched with {', '.join(ready)} only")
        if len(ready) == 1:  # one part: its own scores, not a fusion of one
            return kb.ready_method(ready[0])
        if not missing:
            return kb.ready_method(name)
        adhoc = f"{name}[{'+'.join(ready)}]"
        self.methods.add_adhoc(adhoc, m.fusing_only(ready))
        return kb.ready_method(adhoc)

    def search_many(
        self, queries: Sequence[str], k: int, method: str | None, rerank: str | None
    ) -> list[list[Hit]]:
        with self.kb.catalog.one_read():
            return self._search_many(queries, k, method, rerank)

    def _search_many(
        self, queries: Sequence[str], k: int, method: str | None, rerank: str | None
    ) -> list[list[Hit]]:
        kb = self.kb
        for q in queries:
            check_query(q, k)
        m = self.searchable(method or self.methods.default())
        if rerank is not None or kb.config.rerank.kind is not None:
            return self._search_many_reranked(queries, k, m, rerank)
        return [self.attach(h) for h in m.search_many(list(queries), k)]

    def _filtered(self, hits: list[Hit], where: Where) -> list[Hit]:
        uploads = str(self.kb.layout.root.resolve() / "uploads") + "/"
        prefix, contains = where.path_prefix, where.path_contains

        def keep(h: Hit) -> bool:
            source = h.doc.source if h.doc else ""
            relative = source[len(uploads) :] if source.startswith(uploads) else source
            if prefix and not (source.startswith(prefix) or relative.startswith(prefix)):
                return False
            return not contains or contains in source

        return [h for h in hits if keep(h)]

    def attach(self, hits: list[Hit]) -> list[Hit]:
        found = self.kb.catalog.chunks([h.chunk_id for h in hits])
        return [
            h.with_(chunk=found[h.chunk_id][0], doc=found[h.chunk_id][1]) for h in hits if h.chunk_id in found
        ]

    # -- answering --------------------------------------------------------------------------------
    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        generator: Generator | None,
        on_token: Callable[[str], None] | None,
        method: str,
    ) -> Answer:
        from zhiku.generate.answer import answer_question

        t = time.perf_counter()
        generator = generator or self.kb.generator()
        if generator.reads_meaning:
            generator.use_embedder(self.answer_embedder(method))
        result = answer_question(question, hits, generator, on_token, method)
        result.timings["generate_s"] = round(time.perf_counter() - t, 4)
        return result

    def retrieve(
        self,
        question: str,
        k: int,
        method: str | None,
        where: Where | None,
        rerank: str | None,
        generator: Generator | None,
    ) -> tuple[str, list[Hit]]:
        """(the method used, the passages to answer from): as ``search``, except that an llm
        reranker judges with the LLM that answers (--llm), not only the KB's default. The one
        retrieval of ``ask`` and of every chat turn (CLI and API alike)."""
        kb = self.kb
        name = method or self.methods.default()
        if rerank is not None or kb.config.rerank.kind is not None:
            m = self.searchable(name)  # never builds: a fusion answers with its ready parts
            return name, self._search_reranked(check_query(question, k), k, m, rerank, where, generator)
        return name, self.search(question, k, name, where, None)

    def answer_embedder(self, method: str) -> Any:
        """The dense embedder the search with ``method`` already loaded (a part of a fusion, or the
        method itself), for the offline answerer to read sentences for meaning; None when the
        method has no built dense part (the answerer then scores words alone, and says so)."""
        methods = self.methods
        try:
            parts = methods.parts_in_use(method) if methods.get(method).fuses else [method]
            for part in parts:
                if not methods.get(part).vectors or not methods.is_fresh(part, methods.manifest(part)):
                    continue
                embedder = self.kb.ready_method(part).embedder  # type: ignore[attr-defined]  # .vectors
                if not embedder.trainable:
                    return embedder
        except Exception:  # noqa: BLE001  an answer never fails for want of the better scoring
            return None
        return None

    def ask(
        self,
        question: str,
        k: int,
        method: str | None,
        generator: Generator | None,
        on_token: Callable[[str], None] | None,
        on_hits: Callable[[list[Hit]], None] | None,
        where: Where | None,
        rerank: str | None,
    ) -> Answer:
        t0 = time.perf_counter()
        name, hits = self.retrieve(question, k, method, where, rerank, generator)
        retrieve_s = round(time.perf_counter() - t0, 4)
        if on_hits:
            on_hits(hits)
        answer = self.answer(question, hits, generator, on_token, name)
        answer.timings["retrieve_s"] = retrieve_s
        return answer

    # -- reranking (issue 10) ---------------------------------------------------------------------
    def reranker(self, rerank: str | None, generator: Generator | None) -> tuple[Any, Any]:
        from zhiku.retrieve.rerank import make_reranker, rerank_config, rerankers

        kb = self.kb
        cfg = rerank_config(rerank, kb.config.rerank)
        if cfg.kind is None:
            return None, cfg
        needs_llm = rerankers.get(cfg.kind).needs_generator
        key = json.dumps(
            [
                cfg.model_dump(mode="json"),
                kb.config.generator.model_dump(mode="json"),
                id(generator) if needs_llm and generator is not None else None,
            ],
            sort_keys=True,
            default=str,
        )
        cache = self._rerankers
        if key not in cache:
            cache[key] = make_reranker(cfg, (lambda: generator) if generator is not None else kb.generator)
        return cache[key], cfg

    def rerank_hits(
        self, query: str, hits: list[Hit], k: int, rerank: str | None, generator: Generator | None
    ) -> list[Hit]:
        reranker, cfg = self.reranker(rerank, generator)
        if reranker is None:
            return hits[:k]
        texts = [h.chunk.text if h.chunk is not None else "" for h in hits]
        out: list[Hit] = reranker.rerank(query, hits, texts, top_n=cfg.top_n, threshold=cfg.threshold)
        return out[:k]

    def _search_reranked(
        self,
        query: str,
        k: int,
        m: Method,
        rerank: str | None,
        where: Where | None,
        generator: Generator | None = None,
    ) -> list[Hit]:
        reranker, cfg = self.reranker(rerank, generator)
        depth = max(k, FILTER_DEPTH) if where else k
        if reranker is not None:
            depth = max(depth, cfg.top_n)
        # Attach (and filter) before reranking: the reranker reads the chunk texts, never scores a
        # chunk deleted since the index was built, and spends top_n on hits that can be returned.
        hits = self.attach(m.search(query, depth))
        if where:
            hits = self._filtered(hits, where)
        return self.rerank_hits(query, hits, k, rerank, generator) if reranker is not None else hits[:k]

    def _search_many_reranked(
        self, queries: Sequence[str], k: int, m: Method, rerank: str | None
    ) -> list[list[Hit]]:
        reranker, cfg = self.reranker(rerank, None)
        if reranker is None:
            return [self.attach(h) for h in m.search_many(list(queries), k)]
        lists = m.search_many(list(queries), max(k, cfg.top_n))  # the first stage still batches
        return [
            self.rerank_hits(q.strip(), self.attach(h), k, rerank, None)
            for q, h in zip(queries, lists, strict=True)
        ]


def check_query(query: str, k: int) -> str:
    if not isinstance(query, str) or not query.strip():
        raise UsageError("the query is empty", "Type a question or some keywords")
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}", "Use -k 10, for example")
    return query.strip()
