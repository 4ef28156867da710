"""Score retrievers on a dataset: the engine behind ``zhiku eval`` and ``zhiku.eval.evaluate``.

Anything with ``search(query, k) -> list[Hit]`` can be scored; ``search_many`` is used for the
ranking pass where it batches (dense embeds all queries at once), and per-query latency is then
timed on a seeded sample of single searches, warm (the method is loaded and has answered once
before the clock starts). A judge (``judges.py``) turns hits into the ids the pure metrics score,
so every method, every dataset and every KB go through this one loop.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.eval.datasets import Dataset
from zhiku.eval.judges import EvidenceJudge, Judge, PassageJudge
from zhiku.eval.metrics import DEFAULT_KS, first_relevant_rank, mean_metrics, percentile, ranking_metrics
from zhiku.eval.report import MethodResult, QueryResult, Report
from zhiku.progress import NoProgress, Progress
from zhiku.types import Hit

if TYPE_CHECKING:
    from zhiku.config import KBConfig
    from zhiku.service import BuildProgress, KnowledgeBase

#: per query, results.json keeps this many retrieved ids and this many texts of them
KEEP_IDS, KEEP_SNIPPETS, SNIPPET_CHARS = 10, 3, 240


#: what a run reports (one phase per method and step); the CLI draws it, the library prints nothing
EvalProgress = Progress


class Retriever:
    """What a run scores: ``search`` (and ``search_many`` when ``batched``), after ``warm``.

    Declared, not probed: anything else with ``search(query, k)`` (a ``KnowledgeBase``, a loaded
    method) is wrapped by ``as_retriever``, which says what it can do once.
    """

    @property
    def batched(self) -> bool:
        return False

    def warm(self) -> None:
        """Load what the first search would (models, indexes): not a user's latency."""

    def search(self, query: str, k: int) -> list[Hit]:
        raise NotImplementedError

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        return [self.search(q, k) for q in queries]


class Searchable(Retriever):
    """Any object with ``search(query, k)`` (and perhaps ``search_many``) as a ``Retriever``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        many = getattr(inner, "search_many", None)  # the one place an outside object is asked
        self._batched = bool(getattr(inner, "batched", many is not None))
        self._many = many

    @property
    def batched(self) -> bool:
        return self._batched

    def search(self, query: str, k: int) -> list[Hit]:
        result: list[Hit] = self.inner.search(query, k)
        return result

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if self._many is None:
            return super().search_many(queries, k)
        return list(self._many(list(queries), k))


def as_retriever(obj: Any) -> Retriever:
    return obj if isinstance(obj, Retriever) else Searchable(obj)


class KBRetriever(Retriever):
    """One method of a knowledge base as a retriever: ``evaluate(KBRetriever(kb, "bm25"), ds)``."""

    def __init__(self, kb: KnowledgeBase, method: str | None = None) -> None:
        self.kb = kb
        self.method = method or kb.default_method()

    @property
    def batched(self) -> bool:
        from zhiku.retrieve.base import Method

        # Only a method that overrides search_many batches; the base class loops over search.
        return type(self.kb.method(self.method)).search_many is not Method.search_many

    def warm(self) -> None:
        # An evaluation measures the method as configured: it brings the indexes it needs up to
        # date first (a search never builds, and would answer from a stale or partial fusion).
        for part in self.kb.indexed_parts(self.method):
            self.kb.ready_method(part, build=True)
        self.kb.ready_method(self.method)

    def search(self, query: str, k: int) -> list[Hit]:
        # The method alone: a KB's [rerank] is evaluated as its own row (RerankedRetriever).
        return self.kb.search(query, k, self.method, rerank="off")

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        return self.kb.search_many(queries, k, self.method, rerank="off")


class RerankedRetriever(KBRetriever):
    """A method followed by the rerank stage, timing each stage of every (non-warm-up) query.

    ``rerank``: a ``--rerank`` spec applied to the KB's ``[rerank]`` (None: the table as it is).
    Not batched: reranking is per query, and the stage latencies are what a user of search sees.
    """

    batched = False

    def __init__(self, kb: KnowledgeBase, method: str | None = None, rerank: str | None = None) -> None:
        super().__init__(kb, method)
        self.spec = rerank
        self.reranker, self.config = kb.reranker(rerank)
        self.first_ms: list[float] = []
        self.rerank_ms: list[float] = []
        self._warming = False

    @property
    def label(self) -> str:
        return f"{self.method}>{self.config.kind}"

    def warm(self) -> None:
        super().warm()
        self._warming = True  # the next search loads the reranker's model: not a user's latency

    def search(self, query: str, k: int) -> list[Hit]:
        t0 = time.perf_counter()
        hits = self.kb.search(query, max(k, self.config.top_n), self.method, rerank="off")
        t1 = time.perf_counter()
        out = self.kb.rerank_hits(query, hits, k, self.spec)
        t2 = time.perf_counter()
        if self._warming:
            self._warming = False
        else:
            self.first_ms.append((t1 - t0) * 1000)
            self.rerank_ms.append((t2 - t1) * 1000)
        return out

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        return [self.search(q, k) for q in queries]

    def stages(self) -> dict[str, float]:
        first, rerank = self.first_ms or [0.0], self.rerank_ms or [0.0]
        return {
            "first_stage_ms_p50": round(percentile(first, 50), 3),
            "rerank_ms_p50": round(percentile(rerank, 50), 3),
            "rerank_ms_p95": round(percentile(rerank, 95), 3),
        }

    def note(self) -> str:
        st = self.stages()
        return (
            f"{self.label}: the rerank stage took {st['rerank_ms_p50']:.1f} ms p50 / "
            f"{st['rerank_ms_p95']:.1f} ms p95 per query ({self.reranker.describe()}, the first "
            f"{self.config.top_n} hits of {self.method}, which took {st['first_stage_ms_p50']:.1f} ms p50); "
            "its p50/p95 columns are the whole search"
        )


@dataclass
class Fetched:
    hits: list[list[Hit]]
    latencies_ms: list[float]
    seconds: float


def fetch_hits(
    retriever: Any,
    queries: Sequence[str],
    depth: int,
    *,
    batched: bool | None = None,
    batch_size: int = 64,
    latency_sample: int = 200,
    seed: int = 0,
    progress: EvalProgress | None = None,
    label: str = "search",
) -> Fetched:
    """Every query's hits, plus warm single-query latencies (all queries, or a sample if batched)."""
    progress = progress or NoProgress()
    retriever = as_retriever(retriever)
    search: Callable[[str, int], list[Hit]] = retriever.search
    search_many = retriever.search_many
    if batched is None:
        batched = retriever.batched
    retriever.warm()
    search(queries[0], depth)  # the first call loads models and indexes: not a user's latency
    hits: list[list[Hit]] = []
    latencies: list[float] = []
    progress.start(label, len(queries))
    try:
        t0 = time.perf_counter()
        if batched:
            n = min(latency_sample, len(queries))
            sample = sorted(random.Random(seed).sample(range(len(queries)), n))
            timed_s = 0.0
            for i in range(0, len(queries), batch_size):
                part = list(queries[i : i + batch_size])
                hits.extend(list(h) for h in search_many(part, depth))
                progress.advance(len(part))
                # Single searches are timed between the batches, not in one block at the end, so
                # a burst of load from another process cannot skew the whole sample.
                for j in (j for j in sample if i <= j < i + batch_size):
                    t = time.perf_counter()
                    search(queries[j], depth)
                    latencies.append((time.perf_counter() - t) * 1000)
                    timed_s += latencies[-1] / 1000
            seconds = time.perf_counter() - t0 - timed_s
        else:
            for q in queries:
                t = time.perf_counter()
                hits.append(list(search(q, depth)))
                latencies.append((time.perf_counter() - t) * 1000)
                progress.advance(1)
            seconds = time.perf_counter() - t0
    finally:
        progress.close()
    return Fetched(hits, latencies, seconds)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def score_hits(
    name: str,
    dataset: Dataset,
    judge: Judge,
    fetched: Fetched,
    k: int = 10,
    ks: Sequence[int] = DEFAULT_KS,
) -> MethodResult:
    """Per-query and mean metrics of one method's hits (in the order of ``dataset.queries``)."""
    per_query: list[QueryResult] = []
    rows: list[dict[str, float]] = []
    for (qid, query), hits in zip(dataset.queries.items(), fetched.hits, strict=True):
        ranked, relevant = judge.judge(qid, hits)
        scores = ranking_metrics(ranked, relevant, ks=ks, k=k)
        if judge.partial:
            # Only what was retrieved was judged: recall, precision and nDCG would be made up.
            scores = {key: v for key, v in scores.items() if key.startswith(("hit@", "mrr@"))}
        rows.append(scores)
        rank = first_relevant_rank(ranked, relevant, k)
        # Texts only where something else came first: that is what a reader looks at, and it keeps
        # results.json of a 10,000-question run in tens of megabytes rather than hundreds.
        show = rank != 1
        per_query.append(
            QueryResult(
                query_id=qid,
                query=query,
                relevant=list(relevant)[:KEEP_IDS],
                retrieved=ranked[:KEEP_IDS],
                snippets=[_short(judge.snippet(u, hits)) for u in ranked[:KEEP_SNIPPETS]] if show else [],
                first_rank=rank,
                hit=rank is not None,
                gold_snippet=_short(judge.gold_snippet(qid)) if show else "",
                scores={key: round(v, 4) for key, v in scores.items()},
            )
        )
    lat = fetched.latencies_ms or [0.0]
    n = len(per_query)
    return MethodResult(
        method=name,
        metrics=mean_metrics(rows),
        latency_ms_p50=percentile(lat, 50),
        latency_ms_p95=percentile(lat, 95),
        build_seconds=0.0,
        index_bytes=0,
        per_query=per_query,
        queries_per_second=n / fetched.seconds if fetched.seconds > 0 else 0.0,
    )


def default_judge(dataset: Dataset, retriever: Any = None) -> Judge:
    """Passages for datasets with a corpus; evidence for zhiku QA (a full scan of the KB's chunks
    when the retriever is a knowledge base, so recall and nDCG are exact)."""
    if dataset.corpus:
        return PassageJudge(dataset)
    from zhiku.service import KnowledgeBase

    kb = retriever.kb if isinstance(retriever, KBRetriever) else retriever
    return EvidenceJudge(dataset, kb_chunks(kb) if isinstance(kb, KnowledgeBase) else None)


def kb_chunks(kb: KnowledgeBase) -> Iterable[tuple[str, str, str]]:
    """``(chunk id, document source, text)`` of every chunk of a KB."""
    for doc in kb.documents():
        for chunk in kb.chunks_of(doc.id):
            yield chunk.id, doc.source, chunk.text


def evaluate(
    retriever: Any,
    dataset: Dataset,
    *,
    k: int = 10,
    ks: Sequence[int] = DEFAULT_KS,
    name: str | None = None,
    depth: int | None = None,
    judge: Judge | None = None,
    progress: EvalProgress | None = None,
    latency_sample: int = 200,
    seed: int = 0,
) -> Report:
    """Score one retriever on a dataset.

    ``retriever``: anything with ``search(query, k) -> list[Hit]`` (a ``KnowledgeBase``, a
    ``KBRetriever``, a loaded method); hits map to passages by ``hit.doc.source`` (or the chunk id
    when a hit carries no document). ``depth`` chunks are fetched per query (default ``3 * k``) so
    that several chunks of one passage still leave ``k`` passages to score.
    """
    if not dataset.queries:
        from zhiku.errors import DatasetError

        raise DatasetError(f"dataset {dataset.name!r} has no queries", "Load a dataset with questions")
    judge = judge or default_judge(dataset, retriever)
    fetched = fetch_hits(
        retriever,
        list(dataset.queries.values()),
        depth or 3 * k,
        latency_sample=latency_sample,
        seed=seed,
        progress=progress,
    )
    label = name or getattr(retriever, "method", None) or type(retriever).__name__
    result = score_hits(str(label), dataset, judge, fetched, k=k, ks=ks)
    settings = {"queries": len(dataset.queries), "chunks fetched per query": depth or 3 * k}
    return Report(dataset.name, [result], k=k, settings=settings)


def _cutoffs(ks: Sequence[int], k: int) -> list[int]:
    if k < 1:
        from zhiku.errors import UsageError

        raise UsageError(f"k must be at least 1, got {k}", "Use --k 10, for example")
    # hit@n for n > k would need more than k passages: the report shows what k covers.
    return sorted({n for n in ks if 1 <= n <= k} | {k})


def _language_notes(kb: KnowledgeBase, name: str) -> list[str]:
    notes = []
    language = kb.language()
    for part in kb.indexed_parts(name):
        ok, why = kb.method(part).applicable(language)
        if not ok:
            # The reason reads "...; embedding would take long for nothing. Build it anyway ...":
            # only the first clause describes the situation.
            notes.append(
                f"{part}: {why.split(';')[0]}; it was built because it was asked for, so its "
                f"scores here say little about {part} retrieval with a model made for this language"
            )
    return notes


def _method_settings(kb: KnowledgeBase, names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        for part in [name, *kb.indexed_parts(name)]:
            cfg = kb.method_config(part)
            details = (kb.manifest(part) or {}).get("details", {}) if kb.method(part).indexed else {}
            model = details.get("model") or details.get("model_id")
            out[f"method {part}"] = f"{cfg.kind} {cfg.options}" + (f" model={model}" if model else "")
    return out


def run_eval(
    dataset: Dataset,
    methods: Sequence[str] | None = None,
    *,
    k: int = 10,
    ks: Sequence[int] = DEFAULT_KS,
    kb: KnowledgeBase | None = None,
    config: KBConfig | None = None,
    workdir: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    answers: bool = False,
    answer_k: int = 5,
    progress: EvalProgress | None = None,
    build_progress: BuildProgress | None = None,
    latency_sample: int = 200,
    command: str = "",
    rerank: str | None = None,
) -> Report:
    """Evaluate several methods on one dataset, in one run, on the same queries.

    A dataset with a corpus (SQuAD, BEIR, RGB) is ingested into a fresh KB (``config``, default
    ``KBConfig()``) under ``workdir`` (default: a temporary folder, removed afterwards) and the
    indexes the methods need are built. A zhiku QA set is run against ``kb``, an open knowledge
    base. ``methods``: names the config has, registered kinds, or fusions such as ``bm25+dense``;
    None evaluates what the KB would use (see ``corpus_kb.auto_methods``). ``limit`` samples that
    many queries (seeded); ``answers`` also asks every question. With ``rerank`` (a ``--rerank``
    spec) or a ``[rerank]`` table in the KB's config, each method is also evaluated followed by the
    rerank stage, as the row ``METHOD>KIND``, with the stage's own latency.
    """
    import platform
    import shutil

    from zhiku.config import KBConfig as _KBConfig
    from zhiku.errors import UsageError
    from zhiku.eval.answers import score_answers
    from zhiku.eval.corpus_kb import (
        auto_methods,
        build_for,
        check_built,
        index_cost,
        ingest_corpus,
        plan_methods,
    )
    from zhiku.service import VERSION

    cutoffs = _cutoffs(ks, k)
    names = list(dict.fromkeys(n.strip() for n in methods or ()))
    skipped: list[str] = []
    if limit is not None:
        dataset = dataset.sample(limit, seed)
    if not dataset.corpus and kb is None:
        raise UsageError(
            f"{dataset.name} is a zhiku QA set: it has no corpus of its own",
            "Evaluate it against a knowledge base with --kb NAME",
        )
    if dataset.corpus and kb is not None:
        raise UsageError(
            f"--kb is for zhiku QA sets; {dataset.name} ({dataset.format}) brings its own corpus",
            "Drop --kb: a temporary knowledge base is built from the dataset",
        )
    scratch: Path | None = None
    owned = kb is None
    judge: Judge
    if kb is None:
        if workdir is None:
            from zhiku.store.scratch import scratch_dir

            scratch = scratch_dir("zhiku-eval-")  # also removes those of killed evaluations
        root = (Path(workdir) if workdir is not None else Path(str(scratch))) / "kb"
        if root.exists() and any(root.iterdir()):
            raise UsageError(f"{root} is not empty", "Point --workdir at a new or empty folder")
        base = config or _KBConfig()
        cfg = plan_methods(base, names) if names else base
        try:
            kb, aliases, info = ingest_corpus(dataset, root, cfg, progress)
        except BaseException:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        judge = PassageJudge(dataset, aliases)
    else:
        if names:
            # Fusions are composed in memory by the KB's own resolver; nothing is built into the
            # user's KB by an evaluation.
            check_built(kb, names)
        evidence = EvidenceJudge(dataset, kb_chunks(kb))
        judge = evidence
        info = {"documents": len(kb.documents()), "chunks": kb.chunk_count(), "kb": str(kb.layout.root)}
        if evidence.unanswerable:
            # Evidence that no chunk contains (split by chunking, or a document not ingested): these
            # questions cannot be hit by any method, which the reader must know.
            info["queries without any relevant chunk"] = len(evidence.unanswerable)
    try:
        if not names:
            names, skipped = auto_methods(kb, existing=not owned)
            if not names:
                raise UsageError("no method to evaluate: " + "; ".join(skipped), "Name them with --methods")
        if owned:
            build_for(kb, names, build_progress)
        depth = k if info["chunks"] <= info["documents"] else 3 * k
        queries = list(dataset.queries.values())
        results: list[MethodResult] = []
        reranking = kb.reranker(rerank)[0] is not None
        runs: list[KBRetriever] = []
        for name in names:
            runs.append(KBRetriever(kb, name))
            if reranking:
                runs.append(RerankedRetriever(kb, name, rerank))
        for retriever in runs:
            name = retriever.method
            reranked = isinstance(retriever, RerankedRetriever)
            label = retriever.label if isinstance(retriever, RerankedRetriever) else name
            fetched = fetch_hits(
                retriever,
                queries,
                depth,
                batched=retriever.batched,
                seed=seed,
                latency_sample=latency_sample,
                progress=progress,
                label=label,
            )
            result = score_hits(label, dataset, judge, fetched, k=k, ks=cutoffs)
            result.build_seconds, result.index_bytes = index_cost(kb, name)
            result.notes += _language_notes(kb, name)
            if isinstance(retriever, RerankedRetriever):
                result.stages = retriever.stages()
                result.notes.append(retriever.note())
            if answers:
                # The retrieval pass fetched at least answer_k hits per query in ranked order, so
                # the answers reuse them (what kb.ask would retrieve) rather than search again.
                reuse = depth >= answer_k or reranked
                by_qid = dict(zip(dataset.queries, fetched.hits, strict=True)) if reuse else None
                scored = score_answers(kb, label, dataset, judge, k=answer_k, progress=progress, hits=by_qid)
                result.metrics.update(scored.means)
                for q in result.per_query:
                    extra = scored.per_query.get(q.query_id, {})
                    q.scores.update({key: round(v, 4) for key, v in extra.items()})
                    q.answer = _short(scored.texts.get(q.query_id, ""))
                result.notes.append(scored.note(label, kb.config.generator.kind, answer_k, reused=reuse))
            results.append(result)
        settings: dict[str, Any] = {
            "format": dataset.format,
            "queries": len(queries),
            "limit": limit,
            "seed": seed,
            "k": k,
            "chunks fetched per query": depth,
            "latency sample": latency_sample,
            "chunking": kb.config.chunking.model_dump(),
            "tokenizer": kb.config.tokenizer.model_dump(),
            "language": kb.language(),
            **info,
            **_method_settings(kb, names),
            **({"methods left out": "; ".join(skipped)} if skipped else {}),
            **({"rerank": kb.reranker(rerank)[1].model_dump(mode="json")} if reranking else {}),
            "zhiku": VERSION,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {_cpus()} CPUs",
        }
        return Report(dataset.name, results, k=k, command=command, settings=settings)
    finally:
        if owned:
            kb.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
