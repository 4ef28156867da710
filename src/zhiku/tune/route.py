"""``zhiku tune route``: the KB's default method, hybrid weights, or a query router, chosen on the
validation questions (held-out documents), recorded in zhiku.toml with the evidence.

Every built method is searched once per question; hybrid variants (RRF and score fusion, several
weights) are fused from those same lists in memory, so trying ten weightings costs no extra
searches. The router (keyword-like queries to one method, natural questions to another) is
**cross-fitted**: its two methods are chosen on one half of the questions and scored on the other
half, and vice versa, so it is not credited with choices made on the questions it is scored on.
The best candidate replaces the current default only if it beats it by more than noise (the paired
bootstrap of ``compare.py``); otherwise the default stays and the record says why.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.errors import UsageError
from zhiku.eval.report import MethodResult, QueryResult, Report

if TYPE_CHECKING:
    from zhiku.progress import Progress
    from zhiku.service import KnowledgeBase

DEPTH = 50
RRF_WEIGHTS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (3.0, 1.0), (1.0, 3.0))
SCORE_WEIGHTS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0))
#: methods searched as candidates by default: everything built except composites of composites
SEARCHABLE_KINDS_SKIPPED = {"routed", "fusion", "bm25-expand"}


#: measured on the laws sub-corpus (BENCHMARKS.md): a route chosen on offline questions made BM25 the
#: default, the worst method on real everyday questions
OFFLINE_WARNING = (
    "warning: every validation question is an offline pseudo-question, which reuses the passage's own "
    "words and so favours lexical methods (BM25); check this choice on LLM questions "
    "(zhiku tune questions --llm ...) or on real ones (zhiku eval FILE --kb K) before trusting it"
)


def offline_only(path: Path) -> bool:
    """True when every question of a zhiku QA file was generated offline (``generator`` offline:*)."""
    import json

    gens = {
        str(json.loads(line).get("generator", ""))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    return bool(gens) and all(g.startswith("offline") for g in gens)


def _key(report_k: int) -> str:
    return f"mrr@{report_k}"


def _candidates(kb: KnowledgeBase, names: list[str] | None) -> list[str]:
    if names:
        return names
    out = []
    for s in kb.status():
        if s.built and kb.method(s.name).kind not in SEARCHABLE_KINDS_SKIPPED:
            out.append(s.name)
    return out


def _singles(kb: KnowledgeBase, names: list[str]) -> list[str]:
    """Candidates that are not hybrids: the parts fusion variants are made of."""
    return [n for n in names if not kb.method(n).fuses]


def route(
    kb: KnowledgeBase,
    questions: Path,
    candidates: list[str] | None,
    out: Path,
    progress: Callable[[str], None] | None = None,
    steps: Progress | None = None,
) -> dict[str, Any]:
    """``progress`` gets one line per step; ``steps`` (a job's phases) a phase "search" over the
    candidates, then "fuse" over the fusion variants."""
    from zhiku.config import MethodConfig
    from zhiku.eval.datasets import load_dataset
    from zhiku.eval.judges import EvidenceJudge
    from zhiku.eval.runner import Fetched, KBRetriever, fetch_hits, kb_chunks, score_hits
    from zhiku.progress import NoProgress
    from zhiku.retrieve.fusion import fuse_lists, hybrid_config
    from zhiku.retrieve.methods.routed import keyword_like
    from zhiku.tune.compare import compare, save_config, write_report
    from zhiku.tune.questions import split_paths

    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    _, val_path = split_paths(questions)
    dataset = load_dataset(val_path, fmt="zhiku-qa")
    judge = EvidenceJudge(dataset, kb_chunks(kb))
    queries = list(dataset.queries.values())
    names = _candidates(kb, candidates)
    if not names:
        raise UsageError("no built method to choose from", f"Build some first: zhiku build --kb {kb.name}")
    incumbent = kb.default_method()
    if incumbent not in names:
        names.append(incumbent)
    k = 10
    results: dict[str, MethodResult] = {}
    lists: dict[str, list[list[Any]]] = {}
    steps = steps or NoProgress()
    steps.start("search", len(names))
    for name in names:
        say(f"searching {len(queries)} validation questions with {name}")
        r = KBRetriever(kb, name)
        fetched = fetch_hits(r, queries, DEPTH, batched=r.batched, latency_sample=20, label=name)
        lists[name] = fetched.hits
        results[name] = score_hits(name, dataset, judge, fetched, k=k)
        steps.advance(1)
    singles = _singles(kb, names)
    steps.start("fuse", len(singles) * (len(singles) - 1) // 2)
    variants: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(singles):
        for b in singles[i + 1 :]:
            grid = [("rrf", w) for w in RRF_WEIGHTS] + [("score", w) for w in SCORE_WEIGHTS]
            for fusion, (wa, wb) in grid:
                label = f"{a}:{wa:g}+{b}:{wb:g} {fusion}"
                fused = []
                for la, lb in zip(lists[a], lists[b], strict=True):
                    # The parts' hits are attached already: reuse their chunk and document rather
                    # than ask the catalog again for every weighting.
                    known = {h.chunk_id: h for h in (*la, *lb)}
                    fused.append(
                        [
                            h.with_(chunk=known[h.chunk_id].chunk, doc=known[h.chunk_id].doc)
                            for h in fuse_lists([la, lb], DEPTH, label, fusion, [wa, wb])
                        ]
                    )
                results[label] = score_hits(label, dataset, judge, Fetched(fused, [], 0.0), k=k)
                variants[label] = hybrid_config([a, b], [wa, wb], fusion)
            steps.advance(1)
    steps.close()
    key = _key(k)
    ranked = sorted(results, key=lambda n: -results[n].metrics.get(key, 0.0))
    best = ranked[0]

    # The router, cross-fitted over two halves of the questions (split by document).
    qids = list(dataset.queries)
    doc_of = {qid: (dataset.doc_gold.get(qid) or [""])[0] for qid in qids}
    fold = {q: int(hashlib.sha1(doc_of[q].encode()).hexdigest()[:2], 16) % 2 for q in qids}
    kw = {q: keyword_like(dataset.queries[q]) for q in qids}
    rr = {n: {p.query_id: p.scores.get(key, 0.0) for p in results[n].per_query} for n in results}
    router_rr: dict[str, float] = {}
    picks: dict[str, list[str]] = {}
    for f in (0, 1):
        train_q = [q for q in qids if fold[q] != f]
        for group in (True, False):
            members = [q for q in train_q if kw[q] == group]
            if members:
                choice = max(ranked, key=lambda n: sum(rr[n][q] for q in members))
            else:
                choice = best
            picks.setdefault("keyword" if group else "question", []).append(choice)
            for q in qids:
                if fold[q] == f and kw[q] == group:
                    router_rr[q] = rr[choice][q]
    n_kw = sum(kw.values())
    router = MethodResult(
        "router (cross-fitted)",
        {key: sum(router_rr.values()) / max(1, len(router_rr))},
        0.0,
        0.0,
        0.0,
        0,
        [
            QueryResult(q, dataset.queries[q], [], [], [], None, False, scores={key: router_rr[q]})
            for q in qids
        ],
    )
    shown = [*names, *[n for n in ranked if n in variants][:3]]
    report = Report(
        dataset.name,
        [results[n] for n in dict.fromkeys(shown)],
        k=k,
        command=f"zhiku tune route --kb {kb.name}",
        settings={
            "questions": len(qids),
            "validation file": str(val_path),
            "keyword-like questions": n_kw,
            "chunks fetched per query": DEPTH,
        },
    )
    verdict = compare(Report(dataset.name, [results[best], results[incumbent]], k=k), best, incumbent)
    router_verdict = compare(Report(dataset.name, [router, results[best]], k=k), router.method, best)
    same_picks = len(set(picks.get("keyword", []))) == 1 and len(set(picks.get("question", []))) == 1
    use_router = router_verdict.significant and same_picks and picks["keyword"][0] != picks["question"][0]
    chosen, why = incumbent, verdict.why
    method_cfg: tuple[str, MethodConfig] | None = None
    if use_router:
        chosen, why = "routed", router_verdict.why
        method_cfg = (
            "routed",
            MethodConfig(
                kind="routed", options={"keyword": picks["keyword"][0], "question": picks["question"][0]}
            ),
        )
    elif verdict.significant:
        chosen = best
        if best in variants:
            chosen = "tuned-hybrid"
            method_cfg = (chosen, MethodConfig(kind="hybrid", options=variants[best]))
    evidence = {
        "chosen": chosen,
        "previous": incumbent,
        "best candidate": best,
        "why": why,
        "router": {
            "mrr": round(router.metrics[key], 4),
            "picks": picks,
            "keyword-like": n_kw,
            "questions": len(qids),
            "verdict": router_verdict.why,
        },
        "validation": str(val_path),
        "questions": len(qids),
        "metric": key,
        "chunks": kb.chunk_count(),
        "scores": {n: round(results[n].metrics.get(key, 0.0), 4) for n in ranked[:12]},
        "test": "paired bootstrap on per-question reciprocal ranks, 10000 resamples, one-sided p < 0.05",
        "decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if offline_only(val_path):
        evidence["warning"] = OFFLINE_WARNING
    changes: dict[str, Any] = {"route": evidence}
    if chosen != incumbent:
        changes["default_method"] = chosen
    save_config(kb, method=method_cfg, **changes)
    notes = [
        f"route: {('default is now ' + chosen) if chosen != incumbent else ('default stays ' + incumbent)}"
        f": {why}",
        f"router (keyword-like → {picks.get('keyword')}, questions → {picks.get('question')}): "
        f"{router_verdict.why}",
    ]
    if "warning" in evidence:
        notes.append(OFFLINE_WARNING)
    written = write_report(report, out, notes)
    lines = [
        f"validation: {len(qids)} questions ({n_kw} keyword-like) from held-out documents, "
        f"{time.perf_counter() - t0:.0f} s"
    ]
    lines += [f"  {n:<36} {key} {results[n].metrics.get(key, 0.0):.4f}" for n in ranked[:10]]
    lines += [f"  {'router (cross-fitted)':<36} {key} {router.metrics[key]:.4f}  picks {picks}"]
    lines += [*notes, f"recorded in zhiku.toml [route]; wrote {len(written)} files to {out}"]
    return {**evidence, "summary": "\n".join(lines), "out": str(out)}
