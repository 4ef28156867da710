"""BM25 in Milvus full-text search against zhiku's in-process BM25 (bm25s), on the same KBs.

    nice -n 5 .venv/bin/python benchmarks/milvus_bm25.py [--parity cmrc,laws] [--sizes 100000,300000,1000000]
        [--budget-s 900] [--out benchmarks/results/milvus_bm25.json]

Parity: one KB per dataset with two methods, ``bm25`` (bm25s) and ``bm25m`` (``index = "milvus"``,
a Milvus Lite file), fed the same tokens. Per question: hit@1 of each, the top-10 overlap
(|A ∩ B| / max(|A|, |B|)) and the top-1 score difference. CMRC 2018 dev (848 paragraphs, 3,219
questions: a hit is the question's paragraph) and the laws dev set (benchmarks/data/laws_dev.jsonl,
60 questions over the whole laws corpus: a hit holds the evidence sentence of the named law).

Scale: N synthetic chunks, each the tokens of a random paragraph of the laws corpus (tokenised once
with the KB tokenizer, then sampled, so jieba's time is not in the figures), written to a Milvus
Lite BM25 collection (``MilvusText.save``: insert + index) and to bm25s; warm single-query p50 of
both on keyword queries (``speed.make_queries``). Sizes run in order until ``--budget-s`` is spent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS  # noqa: E402

CMRC = DATA / "cmrc2018" / "cmrc2018_dev.json"
LAWS = DATA / "cn-laws-lawrefbook"
LAWS_DEV = Path(__file__).resolve().parent / "data" / "laws_dev.jsonl"


def methods_config() -> Any:
    from zhiku.config import KBConfig, MethodConfig

    return KBConfig(
        default_method="bm25",
        methods={
            "bm25": MethodConfig(kind="bm25", enabled=True),
            "bm25m": MethodConfig(kind="bm25", enabled=True, options={"index": "milvus"}),
        },
    )


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def compare(kb: Any, questions: list[tuple[str, str]], hit: Any) -> dict[str, Any]:
    """hit@1 of both, mean top-10 overlap, score difference and latency; ``hit(qid, hit) -> bool``."""
    both: dict[str, dict[str, list[float]]] = {m: {"hit1": [], "ms": []} for m in ("bm25", "bm25m")}
    overlap, score_diff, same_top1, same_scores = [], [], [], []
    for m in ("bm25", "bm25m"):
        kb.search(questions[0][1], 10, m)  # warm: load the index
    for qid, q in questions:
        tops = {}
        for m in ("bm25", "bm25m"):
            t = time.perf_counter()
            hits = kb.search(q, 10, m)
            both[m]["ms"].append((time.perf_counter() - t) * 1000)
            both[m]["hit1"].append(float(bool(hits) and hit(qid, hits[0])))
            tops[m] = hits
        a, b = [h.chunk_id for h in tops["bm25"]], [h.chunk_id for h in tops["bm25m"]]
        # both empty (no query word in the corpus) is agreement
        overlap.append(len(set(a) & set(b)) / max(len(a), len(b)) if a or b else 1.0)
        # the same scores rank by rank: any order difference is among equal scores (ties)
        same_scores.append(
            float([round(h.score, 3) for h in tops["bm25"]] == [round(h.score, 3) for h in tops["bm25m"]])
        )
        same_top1.append(float(a[:1] == b[:1]))
        if tops["bm25"] and tops["bm25m"]:
            score_diff.append(abs(tops["bm25"][0].score - tops["bm25m"][0].score))
    return {
        "questions": len(questions),
        "hit_at_1": {m: round(statistics.mean(v["hit1"]), 4) for m, v in both.items()},
        "hit_at_1_diff": round(
            statistics.mean(both["bm25m"]["hit1"]) - statistics.mean(both["bm25"]["hit1"]), 4
        ),
        "top10_overlap_mean": round(statistics.mean(overlap), 4),
        "top10_overlap_min": round(min(overlap), 4),
        "same_top1": round(statistics.mean(same_top1), 4),
        "same_scores_rank_by_rank": round(statistics.mean(same_scores), 4),
        "top1_score_abs_diff_max": round(max(score_diff, default=0.0), 6),
        "p50_ms": {m: round(pct(v["ms"], 50), 2) for m, v in both.items()},
        "p95_ms": {m: round(pct(v["ms"], 95), 2) for m, v in both.items()},
    }


def build_both(kb: Any) -> dict[str, float]:
    out = {}
    for m in ("bm25", "bm25m"):
        t = time.perf_counter()
        kb.build([m], force=True)
        out[m] = round(time.perf_counter() - t, 2)
    return out


def parity_cmrc(work: Path) -> dict[str, Any]:
    from zhiku.eval.corpus_kb import ingest_corpus
    from zhiku.eval.datasets import load_dataset

    ds = load_dataset(CMRC)
    kb, aliases, info = ingest_corpus(ds, work / "cmrc", methods_config())
    try:
        build_s = build_both(kb)

        def hit(qid: str, h: Any) -> bool:
            src = h.doc.source if h.doc else ""
            return any(ds.qrels.get(qid, {}).get(p, 0) > 0 for p in aliases.get(src, [src]))

        res = compare(kb, sorted(ds.queries.items()), hit)
        return {"dataset": "CMRC 2018 dev", "chunks": info["chunks"], "build_s": build_s, **res}
    finally:
        kb.close()


def parity_laws(work: Path) -> dict[str, Any]:
    from zhiku.eval.datasets import judge_zhiku_qa, load_dataset
    from zhiku.service import KnowledgeBase

    ds = load_dataset(LAWS_DEV)
    with KnowledgeBase.open(str(work / "laws"), config=methods_config()) as kb:
        kb.ingest([LAWS], build=False)
        build_s = build_both(kb)

        def hit(qid: str, h: Any) -> bool:
            return judge_zhiku_qa(
                h.chunk.text if h.chunk else "",
                h.doc.source if h.doc else "",
                ds.evidence.get(qid, []),
                ds.doc_gold.get(qid, []),
            )

        res = compare(kb, sorted(ds.queries.items()), hit)
        return {
            "dataset": "laws dev (benchmarks/data/laws_dev.jsonl)",
            "chunks": kb.catalog.chunk_count(),
            "build_s": build_s,
            **res,
        }


def scale(
    sizes: list[int], budget_s: float, n_queries: int, milvus_queries: int, done: Any
) -> list[dict[str, Any]]:
    import bm25_touched
    import bm25s
    import numpy as np
    from speed import make_queries, paragraphs

    from zhiku.config import KBConfig
    from zhiku.index.milvus_text import MilvusText
    from zhiku.text.tokenize import make_tokenizer

    tok = make_tokenizer(**KBConfig().tokenizer.model_dump())  # a KB's default: stop words too
    t = time.perf_counter()
    pool = [tok(p) for p in paragraphs()]
    print(f"tokenised {len(pool)} paragraphs in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    queries = [tok(q) for q in make_queries(n_queries)]
    rows = []
    t_start = time.perf_counter()
    for n in sizes:
        if time.perf_counter() - t_start > budget_s:
            rows.append({"chunks": n, "skipped": f"time budget of {budget_s:.0f} s spent"})
            break
        rng = random.Random(n)
        docs = [pool[rng.randrange(len(pool))] for _ in range(n)]
        ids = [f"c{i}" for i in range(n)]
        row: dict[str, Any] = {"chunks": n, "load_before": os.getloadavg()[0]}
        with tempfile.TemporaryDirectory(prefix="zk-mbm25-") as d:
            folder = Path(d)
            t, c = time.perf_counter(), time.process_time()
            MilvusText().save(folder, ids, docs)
            row["milvus_ingest_s"] = round(time.perf_counter() - t, 1)
            row["milvus_ingest_cpu_s_client"] = round(time.process_time() - c, 1)
            t = time.perf_counter()
            index = MilvusText.load(folder)
            row["milvus_load_s"] = round(time.perf_counter() - t, 1)
            index.search_many([queries[0]], 10)
            ms = []
            row["milvus_queries"] = min(milvus_queries, len(queries))
            for q in queries[:milvus_queries]:
                t = time.perf_counter()
                index.search_many([q], 10)
                ms.append((time.perf_counter() - t) * 1000)
            row["milvus_p50_ms"], row["milvus_p95_ms"] = round(pct(ms, 50), 2), round(pct(ms, 95), 2)
            index.close()
            row["milvus_db_mb"] = round(
                sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1
            )
        vocab: dict[str, int] = {}
        tid = [
            [vocab.setdefault(w, len(vocab)) for w in doc] or [vocab.setdefault("\x00", len(vocab))]
            for doc in docs
        ]
        t = time.perf_counter()
        model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        model.index(bm25s.tokenization.Tokenized(ids=tid, vocab=vocab), show_progress=False)
        row["bm25s_index_s"] = round(time.perf_counter() - t, 1)
        row["bm25s_queries"] = len(queries)
        old_ms, new_ms, agree = [], [], 0
        for q in queries:
            qids = [vocab[w] for w in q if w in vocab]
            t = time.perf_counter()
            if qids:  # zhiku's path: bm25s's scoring and a top-10 over every chunk
                s = model.get_scores(qids)
                top = np.argpartition(-s, 9)[:10]
                top = top[np.argsort(-s[top], kind="stable")]
            old_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            if qids:  # the rejected alternative (bm25_touched.py): top-k over the touched chunks
                s2, touched = bm25_touched.score(model.scores, qids)
                top2 = bm25_touched.top_k(s2, 10, touched)
            new_ms.append((time.perf_counter() - t) * 1000)
            if qids:
                agree += sorted(np.round(s[top], 4).tolist()) == sorted(np.round(s2[top2], 4).tolist())
            else:
                agree += 1
        row["bm25s_p50_ms"], row["bm25s_p95_ms"] = round(pct(old_ms, 50), 2), round(pct(old_ms, 95), 2)
        row["touched_topk_p50_ms"], row["touched_topk_p95_ms"] = (
            round(pct(new_ms, 50), 2),
            round(pct(new_ms, 95), 2),
        )
        row["touched_topk_same_top10_scores"] = round(agree / len(queries), 4)
        row["load_after"] = os.getloadavg()[0]
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
        done(row)
        del docs, tid, model
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parity", default="cmrc,laws", help="datasets, or '' for none")
    p.add_argument("--sizes", default="100000,300000,1000000", help="scale sizes, or '' for none")
    p.add_argument("--budget-s", type=float, default=900.0, help="start no new size after this long")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--milvus-queries", type=int, default=200, help="of them, asked of Milvus (slow at scale)")
    p.add_argument("--out", type=Path, default=RESULTS / "milvus_bm25.json")
    args = p.parse_args(argv)
    out: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    out["command"] = "nice -n 5 .venv/bin/python " + shlex.join(
        ["benchmarks/milvus_bm25.py", *(argv or sys.argv[1:])]
    )
    out["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    out["machine"] = f"{os.cpu_count()} cores, shared; load {os.getloadavg()[0]:.1f} at start"
    with tempfile.TemporaryDirectory(prefix="zk-mbm25-") as d:
        for key in filter(None, args.parity.split(",")):
            t = time.perf_counter()
            res = parity_cmrc(Path(d)) if key == "cmrc" else parity_laws(Path(d))
            res["seconds"] = round(time.perf_counter() - t, 1)
            res["load_after"] = os.getloadavg()[0]
            out.setdefault("parity", {})[key] = res
            print(json.dumps(res), file=sys.stderr)
            args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sizes = [int(s) for s in args.sizes.split(",") if s]

    def done(row: dict[str, Any]) -> None:  # each size as it ends: a long run keeps what it measured
        rows = [r for r in out.get("scale", []) if r["chunks"] != row["chunks"]] + [row]
        out["scale"] = sorted(rows, key=lambda r: r["chunks"])
        args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    if sizes:
        scale(sizes, args.budget_s, args.queries, args.milvus_queries, done)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
