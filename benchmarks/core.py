"""Core figures of issue 2 on the Chinese laws corpus (../shared/data/cn-laws-lawrefbook).

    .venv/bin/python benchmarks/core.py [--dense-sample 400] [--out benchmarks/results/core.json]

Measures: first ingest (BM25) time, second ingest of the unchanged folder, the demo query's top
document, `zhiku ask` with a citation, warm BM25 latency p50/p95, `zhiku --help` time, and dense
embedding (MiniLM) chunks/s on a sample of the corpus next to the model's raw rate on short English
sentences. Runs in a temporary ZHIKU_HOME; never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAWS = ROOT.parent / "shared" / "data" / "cn-laws-lawrefbook"
DEMO_QUERY = "农业保险合同可以随便解除吗"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dense-sample", type=int, default=400)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "core.json"))
    args = ap.parse_args()
    if not LAWS.is_dir():
        sys.exit(f"error: {LAWS} not found. The benchmark reads ../shared/data beside the repository")

    from zhiku.service import KnowledgeBase

    home = Path(tempfile.mkdtemp(prefix="zhiku-bench-"))
    res: dict[str, object] = {}
    try:
        zk = [sys.executable, "-m", "zhiku"]
        env = {"ZHIKU_HOME": str(home), "PATH": "/usr/bin:/bin"}
        t = time.perf_counter()
        subprocess.run([*zk, "ingest", str(LAWS), "--kb", "laws"], check=True, env=env, capture_output=True)
        res["ingest_first_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        out = subprocess.run(
            [*zk, "ingest", str(LAWS), "--kb", "laws"], check=True, env=env, capture_output=True, text=True
        )
        res["ingest_second_s"] = round(time.perf_counter() - t, 2)
        res["ingest_second_output"] = out.stdout.splitlines()[0]
        res["second_over_first"] = round(res["ingest_second_s"] / res["ingest_first_s"], 3)  # type: ignore[operator]

        kb = KnowledgeBase.open("laws", home=home, create=False)
        docs = kb.documents()
        res["documents"] = len(docs)
        res["chunks"] = kb.catalog.chunk_count()
        res["characters"] = sum(d.chars for d in docs)
        hits = kb.search(DEMO_QUERY, k=3, method="bm25")
        res["demo_query_top3"] = [h.doc.title for h in hits]
        answer = kb.ask(DEMO_QUERY)
        res["demo_answer"] = answer.text
        res["demo_citations"] = [
            f"[{c.n}] {c.title} {Path(c.source).name}:{c.start}-{c.end}" for c in answer.citations
        ]

        # Warm latency: queries are article sentences and titles drawn from the corpus itself.
        rng = random.Random(0)
        sample = rng.sample(docs, min(args.queries, len(docs)))
        queries = [
            d.title[:12] if i % 2 else kb.catalog.chunks_of(d.id)[0].text[:24] for i, d in enumerate(sample)
        ]
        kb.search(queries[0], k=10, method="bm25")  # load the index
        lat, found = [], 0
        for q in queries:
            t = time.perf_counter()
            found += bool(kb.search(q, k=10, method="bm25"))
            lat.append((time.perf_counter() - t) * 1000)
        res["bm25_warm_ms"] = {
            "n": len(lat),
            "with_hits": found,
            "p50": round(statistics.median(lat), 2),
            "p95": round(pct(lat, 95), 2),
        }

        helps = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).parent / "zhiku"), "--help"], check=True, capture_output=True
            )
            helps.append(time.perf_counter() - t)
        res["help_s_median"] = round(statistics.median(helps), 3)

        if args.dense_sample:
            from zhiku.embed.sbert import SentenceTransformerEmbedder

            emb = SentenceTransformerEmbedder()
            corpus = kb.corpus()
            idx = rng.sample(range(len(corpus)), min(args.dense_sample, len(corpus)))
            texts = [corpus.index_texts()[i] for i in idx]
            emb.embed(texts[:32])  # load the model
            t = time.perf_counter()
            emb.embed(texts)
            dense_rate = len(texts) / (time.perf_counter() - t)
            short = [f"The committee approved proposal number {i} after a short debate." for i in range(400)]
            t = time.perf_counter()
            emb.embed(short)
            raw_rate = len(short) / (time.perf_counter() - t)
            res["dense_minilm"] = {
                "law_chunks_per_s": round(dense_rate, 1),
                "short_en_sentences_per_s": round(raw_rate, 1),
                "sample_chunks": len(texts),
                "mean_chunk_chars": round(statistics.mean(len(x) for x in texts)),
                "estimated_full_corpus_min": round(len(corpus) / dense_rate / 60, 1),
            }
        kb.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(res, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
