"""Hybrid in one engine: zhiku's fusion against Milvus's own rankers, on the same KB.

    ZHIKU_BENCH_DATA=../shared/data ZHIKU_VECTOR_CACHE=/tmp/zk-hybrid-vectors \
        nice -n 5 .venv/bin/python benchmarks/milvus_hybrid.py \
        [--sets cmrc,laws] [--limit N] [--out benchmarks/results/milvus_hybrid.json]

One KB per dataset with ``bm25`` and ``dense`` (e5, the int8 engine) both with ``index = "milvus"``
(Milvus Lite files; the dense collection keeps the KB's words too) and four fusions of the two:

- ``zhiku``: the default hybrid's fusion (score, min-max, BM25 1 : e5 2), fused by zhiku;
- ``milvus-weighted``: the same weights, fused by Milvus's ``WeightedRanker`` in one request;
- ``zhiku-rrf`` and ``milvus-rrf``: reciprocal rank fusion (k 60) by zhiku (weighted 1 : 2) and by
  ``RRFRanker`` (unweighted: it takes no weights).

Per question: MRR@10 and hit@1 of each, and the warm single-query latency (the search through
``KnowledgeBase.search``: tokenising, embedding the question, the index(es), attaching chunks).
CMRC 2018 dev (848 paragraphs, 3,219 questions: a hit is the question's paragraph) and the laws
dev set (benchmarks/data/laws_dev.jsonl, 60 questions over the whole laws corpus: a hit holds the
evidence sentence of the named law), as benchmarks/milvus_bm25.py loads them. ``--laws-sample N``
searches the laws the questions name plus N others instead of all 1,100 (e5 embeds the whole
corpus in 773 CPU-s: more than a loaded shared machine gives in an hour).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS  # noqa: E402

CMRC = DATA / "cmrc2018" / "cmrc2018_dev.json"
LAWS = DATA / "cn-laws-lawrefbook"
LAWS_DEV = Path(__file__).resolve().parent / "data" / "laws_dev.jsonl"

#: fusion name -> (fusion, engine, weights: BM25, e5); the default hybrid's weights for Chinese
#: questions, except Milvus's RRF: its RRFRanker takes no weights (zhiku refuses to pass a weighted
#: RRF to it, and the run measured here gave it none)
FUSIONS = {
    "zhiku": ("score", "zhiku", [1.0, 2.0]),
    "milvus-weighted": ("score", "milvus", [1.0, 2.0]),
    "zhiku-rrf": ("rrf", "zhiku", [1.0, 2.0]),
    "milvus-rrf": ("rrf", "milvus", [1.0, 1.0]),
}


def methods_config() -> Any:
    from zhiku.config import KBConfig, MethodConfig

    hybrid = {"of": ["bm25", "dense"], "normalize": "minmax"}
    return KBConfig(
        default_method="bm25",
        methods={
            "bm25": MethodConfig(kind="bm25", enabled=True, options={"index": "milvus"}),
            "dense": MethodConfig(kind="dense", enabled=True, options={"embedder": "e5", "index": "milvus"}),
            **{
                name: MethodConfig(
                    kind="hybrid", options={**hybrid, "fusion": fusion, "engine": engine, "weights": weights}
                )
                for name, (fusion, engine, weights) in FUSIONS.items()
            },
        },
    )


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def compare(kb: Any, questions: list[tuple[str, str]], hit: Callable[[str, Any], bool]) -> dict[str, Any]:
    names = list(FUSIONS)
    rr: dict[str, list[float]] = {m: [] for m in names}
    h1: dict[str, list[float]] = {m: [] for m in names}
    ms: dict[str, list[float]] = {m: [] for m in names}
    for m in names:
        kb.search(questions[0][1], 10, m)  # warm: load the indexes
        assert not kb.notes, kb.notes  # each fuses where it says
    for i, (qid, q) in enumerate(questions):
        for m in names[i % len(names) :] + names[: i % len(names)]:  # rotate: no fixed order of cache
            t = time.perf_counter()
            hits = kb.search(q, 10, m)
            ms[m].append((time.perf_counter() - t) * 1000)
            rank = next((r for r, h in enumerate(hits, 1) if hit(qid, h)), 0)
            rr[m].append(1 / rank if rank else 0.0)
            h1[m].append(float(rank == 1))
        if i and i % 200 == 0:
            print(f"  {i} questions, load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    return {
        "questions": len(questions),
        "mrr_at_10": {m: round(statistics.mean(v), 4) for m, v in rr.items()},
        "hit_at_1": {m: round(statistics.mean(v), 4) for m, v in h1.items()},
        "p50_ms": {m: round(pct(v, 50), 1) for m, v in ms.items()},
        "p95_ms": {m: round(pct(v, 95), 1) for m, v in ms.items()},
    }


def build(kb: Any) -> dict[str, float]:
    out = {}
    for m in ("bm25", "dense"):
        t = time.perf_counter()
        kb.build([m])
        out[m] = round(time.perf_counter() - t, 1)
    return out


def run_cmrc(work: Path, limit: int | None) -> dict[str, Any]:
    from zhiku.eval.corpus_kb import ingest_corpus
    from zhiku.eval.datasets import load_dataset

    ds = load_dataset(CMRC)
    kb, aliases, info = ingest_corpus(ds, work / "cmrc", methods_config())
    try:
        build_s = build(kb)

        def hit(qid: str, h: Any) -> bool:
            src = h.doc.source if h.doc else ""
            return any(ds.qrels.get(qid, {}).get(p, 0) > 0 for p in aliases.get(src, [src]))

        questions = sorted(ds.queries.items())[:limit]
        return {
            "dataset": "CMRC 2018 dev",
            "chunks": info["chunks"],
            "build_s": build_s,
            **compare(kb, questions, hit),
        }
    finally:
        kb.close()


def law_files(ds: Any, sample: int | None) -> list[Path]:
    """The whole laws corpus, or the laws the questions name plus ``sample`` others (seeded)."""
    if sample is None:
        return [LAWS]
    files = sorted(p for p in LAWS.rglob("*.md") if p.name != "README.md")
    named = {Path(d).name for docs in ds.doc_gold.values() for d in docs}
    gold = [p for p in files if p.name in named]
    others = [p for p in files if p.name not in named]
    return gold + random.Random(0).sample(others, min(sample, len(others)))


def run_laws(work: Path, limit: int | None, sample: int | None) -> dict[str, Any]:
    from zhiku.eval.datasets import judge_zhiku_qa, load_dataset
    from zhiku.service import KnowledgeBase

    ds = load_dataset(LAWS_DEV)
    files = law_files(ds, sample)
    with KnowledgeBase.open(str(work / "laws"), config=methods_config()) as kb:
        kb.ingest(files, build=False)
        build_s = build(kb)

        def hit(qid: str, h: Any) -> bool:
            return judge_zhiku_qa(
                h.chunk.text if h.chunk else "",
                h.doc.source if h.doc else "",
                ds.evidence.get(qid, []),
                ds.doc_gold.get(qid, []),
            )

        questions = sorted(ds.queries.items())[:limit]
        return {
            "dataset": "laws dev (benchmarks/data/laws_dev.jsonl)",
            "corpus": "the whole laws corpus"
            if sample is None
            else f"the {len(files) - sample} laws the questions name + {sample} others (seeded sample)",
            "chunks": kb.catalog.chunk_count(),
            "build_s": build_s,
            **compare(kb, questions, hit),
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="cmrc,laws")
    p.add_argument("--limit", type=int, default=None, help="the first N questions of each set (sorted by id)")
    p.add_argument(
        "--laws-sample", type=int, default=None, help="laws: the named laws + N others, not the whole corpus"
    )
    p.add_argument("--out", type=Path, default=RESULTS / "milvus_hybrid.json")
    args = p.parse_args(argv)
    out: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    env = " ".join(
        f"{v}={os.environ[v]}" for v in ("ZHIKU_BENCH_DATA", "ZHIKU_VECTOR_CACHE") if v in os.environ
    )
    out["command"] = f"{env} nice -n 5 .venv/bin/python " + shlex.join(
        ["benchmarks/milvus_hybrid.py", *(argv or sys.argv[1:])]
    )
    out["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    out["machine"] = f"{os.cpu_count()} cores, shared; load {os.getloadavg()[0]:.1f} at start"
    out["fusions"] = {k: {"fusion": f, "engine": e, "weights": w} for k, (f, e, w) in FUSIONS.items()}
    with tempfile.TemporaryDirectory(prefix="zk-mhybrid-") as d:
        for key in filter(None, args.sets.split(",")):
            t, c = time.perf_counter(), time.process_time()
            load_before = os.getloadavg()[0]
            res = (
                run_cmrc(Path(d), args.limit)
                if key == "cmrc"
                else run_laws(Path(d), args.limit, args.laws_sample)
            )
            res["seconds"] = round(time.perf_counter() - t, 1)
            res["cpu_s_this_process"] = round(time.process_time() - c, 1)
            res["load_before"], res["load_after"] = load_before, os.getloadavg()[0]
            res["command"], res["commit"] = out["command"], out["commit"]
            out.setdefault("sets", {})[key] = res
            print(json.dumps(res), file=sys.stderr)
            args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
