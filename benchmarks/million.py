"""A million chunks, one stage at a time: ingest, BM25, exact vectors, HNSW, then queries.

    ZHIKU_BENCH_DATA=/work/shared/data OMP_NUM_THREADS=2 nice -n 5 \\
        .venv/bin/python benchmarks/million.py --stage STAGE [--dir /tmp/million] [--memo-tokens]

STAGE: corpus, ingest, bm25, vectors, vectors_hnsw, query, real, ann_real, ann_mix, ann_1m,
one_process, report.

Each stage runs in its own process, so its peak RSS (``resource.getrusage``) is its own, and
writes ``DIR/stage-NAME.json``; a stage already done is not run again (delete its JSON to redo
it). ``--stage report`` gathers the stages into ``benchmarks/results/million.json``.

The corpus is speed.py's (documents recombined from the laws paragraphs, seeded), sized to a
little over a million chunks. Vectors: the hashing embedder at 384 dims (synthetic, see
docs/million.md); the ``real`` stage measures HNSW recall on real e5 vectors of laws chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import RESULTS, commit  # noqa: E402
from speed import write_corpus  # noqa: E402

TARGET = 1_050_000  # speed.py's estimate gave 955,981 chunks for 1,000,000: aim past a million


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def load1() -> float:
    return os.getloadavg()[0]


def config(hnsw: dict[str, int]) -> Any:
    from zhiku.config import KBConfig, MethodConfig

    return KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "vectors": MethodConfig(kind="dense", options={"embedder": "hashing", "dim": 384}),
            "vectors_hnsw": MethodConfig(
                kind="dense",
                options={"embedder": "hashing", "dim": 384, "index": "faiss-hnsw", "index_options": hnsw},
            ),
            "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "vectors_hnsw"]}),
            "hybrid_exact": MethodConfig(kind="hybrid", options={"of": ["bm25", "vectors"]}),
        }
    )


HNSW = {"m": 16, "ef_construction": 100, "ef_search": 64}  # the build affordable here; see docs/million.md


def stage_corpus(d: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    docs, chars = write_corpus(d / "docs", TARGET)
    return {"documents": docs, "chars": chars, "seconds": round(time.perf_counter() - t0, 1)}


def open_kb(d: Path) -> Any:
    from zhiku.service import KnowledgeBase

    kb_dir = d / "kb"
    if kb_dir.exists():
        return KnowledgeBase.open(str(kb_dir), create=False)
    return KnowledgeBase.open(str(kb_dir), config=config(HNSW))


def stage_ingest(d: Path) -> dict[str, Any]:
    with open_kb(d) as kb:
        t0 = time.perf_counter()
        report, _ = kb.ingest([d / "docs"], build=False)
        secs = time.perf_counter() - t0
        return {
            "chunks": report.chunks,
            "chars": report.chars,
            "seconds": round(secs, 1),
            "summary": str(report.summary()),
        }


def stage_one_process(d: Path) -> dict[str, Any]:
    """Ingest, the BM25 build and an HNSW build (hashing vectors: e5 at a million is out of reach
    here) one after the other in one process, as `zhiku ingest` runs them: the peak RSS of the
    whole, not of each step. Its own KB (``kb-one``), from the same corpus."""
    from zhiku.service import KnowledgeBase

    steps: dict[str, Any] = {}
    with KnowledgeBase.open(str(d / "kb-one"), config=config(HNSW)) as kb:
        t0 = time.perf_counter()
        report, _ = kb.ingest([d / "docs"], build=False)
        steps["ingest"] = {"chunks": report.chunks, "seconds": round(time.perf_counter() - t0, 1)}
        steps["ingest"]["rss_peak_mb_so_far"] = rss_mb()
        for name in ("bm25", "vectors_hnsw"):
            t0 = time.perf_counter()
            kb.build(names=[name])
            steps[name] = {"seconds": round(time.perf_counter() - t0, 1), "rss_peak_mb_so_far": rss_mb()}
    return {"steps": steps, "hnsw": HNSW}


def stage_build(d: Path, name: str) -> dict[str, Any]:
    with open_kb(d) as kb:
        t0 = time.perf_counter()
        last = [0.0]

        def progress(*a: Any, **k: Any) -> None:  # print at most every 30 s
            if time.perf_counter() - last[0] > 30:
                last[0] = time.perf_counter()
                print(f"{name} {time.perf_counter() - t0:.0f}s {a} load {load1():.1f}", flush=True)

        report = kb.build(names=[name])
        secs = time.perf_counter() - t0
        return {"seconds": round(secs, 1), "report": str(report)[:2000]}


REAL = 3000  # real e5 chunk vectors: ~28 passages per CPU-second, what a shared machine affords
HNSW_GRID = ({"m": 16, "ef_construction": 100}, {"m": 32, "ef_construction": 100})
EF_SEARCH = (16, 32, 64, 128, 256)


def stage_real(d: Path) -> dict[str, Any]:
    """Real e5 (int8 engine) vectors: REAL laws chunks (seeded sample), the laws dev questions and
    the benchmark's keyword queries, saved for the ``ann`` stages."""
    import random

    from e5_rate import laws_chunks
    from sections import DATA
    from speed import make_queries

    from zhiku.embed.e5 import E5Embedder

    chunks = laws_chunks(DATA / "cn-laws-lawrefbook")
    sample = random.Random(0).sample(chunks, REAL)
    dev = [
        json.loads(line)["question"] for line in (Path(__file__).parent / "data" / "laws_dev.jsonl").open()
    ]
    queries = dev + make_queries(200)
    emb = E5Embedder(engine="int8", workers=1)
    t0, c0 = time.perf_counter(), time.process_time()
    base = np.asarray(emb.embed(sample), dtype=np.float32)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    q = np.asarray(emb.embed_queries(queries), dtype=np.float32)
    np.save(d / "e5_base.npy", base)
    np.save(d / "e5_queries.npy", q)
    return {
        "laws_chunks": len(chunks),
        "embedded": len(sample),
        "queries": len(queries),
        "embed_s": round(secs, 1),
        "embed_cpu_s_this_process": round(cpu, 1),
    }


def gaussian_like(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors drawn from the Gaussian with the real vectors' mean and covariance (the
    same spectrum, so about the same intrinsic dimension, which is what makes HNSW easy or hard)."""

    rng = np.random.default_rng(seed)
    mean = real.mean(0)
    cov = np.cov(real, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    root = (vecs * np.sqrt(np.clip(vals, 0, None))).astype(np.float32)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for a in range(0, n, 100_000):
        z = rng.standard_normal((min(100_000, n - a), real.shape[1]), dtype=np.float32)
        x = z @ root.T + mean
        out[a : a + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def ann(
    base: np.ndarray,
    queries: np.ndarray,
    grid: Any,
    label: str,
    keep: list[Any] | None = None,
    efs: tuple[int, ...] = EF_SEARCH,
) -> dict[str, Any]:
    """HNSW (faiss, through zhiku's faiss-hnsw index) against exact inner product: recall@10 and
    index-only latency per efSearch, one query at a time."""
    import faiss
    from speed import pct

    import zhiku.index.faiss  # noqa: F401  (registers faiss-hnsw)
    from zhiku.index.base import fill_index, indexes

    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    ms = []
    for q in queries[:50]:
        t = time.perf_counter()
        flat.search(q[None], 10)
        ms.append((time.perf_counter() - t) * 1000)
    _, truth = flat.search(queries, 10)
    del flat
    out: dict[str, Any] = {"vectors": label, "n": len(base), "queries": len(queries)}
    out["exact_p50_ms"] = round(pct(ms, 50), 3)
    ids = [str(i) for i in range(len(base))]
    out["grid"] = []
    for params in grid:
        t, c = time.perf_counter(), time.process_time()
        index = indexes.get("faiss-hnsw")(base.shape[1], "ip", **params)
        fill_index(index, ids, base)
        row: dict[str, Any] = {**params, "build_s": round(time.perf_counter() - t, 1)}
        row["build_cpu_s"] = round(time.process_time() - c, 1)
        row["load_after_build"] = round(load1(), 1)
        row["sweep"] = []
        for ef in efs:
            index._index.hnsw.efSearch = ef
            index.search(queries[:1], 10)
            ms, rec = [], []
            for q, tr in zip(queries, truth, strict=True):
                t = time.perf_counter()
                got = index.search(q[None], 10)[0]
                ms.append((time.perf_counter() - t) * 1000)
                rec.append(len({int(c) for c, _, _ in got} & set(tr.tolist())) / 10)
            row["sweep"].append(
                {
                    "ef_search": ef,
                    "recall_at_10": round(float(np.mean(rec)), 4),
                    "p50_ms": round(pct(ms, 50), 3),
                    "p95_ms": round(pct(ms, 95), 3),
                    "load": round(load1(), 1),
                }
            )
            print(label, len(base), params, row["sweep"][-1], flush=True)
        out["grid"].append(row)
        if keep is not None:
            keep.append(index)
        del index
    return out


def stage_ann_real(d: Path) -> dict[str, Any]:
    """Recall on the real e5 vectors and on Gaussian ones fitted to them, the same size, the same
    queries: how far the synthetic vectors stand in for real ones."""

    real, q = np.load(d / "e5_base.npy"), np.load(d / "e5_queries.npy")
    return {
        "real": ann(real, q, HNSW_GRID, "e5 (real, laws chunks)"),
        "synthetic": ann(gaussian_like(real, len(real), 1), q, HNSW_GRID, "Gaussian fitted to e5"),
        "synthetic_100k": ann(gaussian_like(real, 100_000, 2), q, HNSW_GRID, "Gaussian fitted to e5"),
    }


def recombined(real: np.ndarray, n: int, seed: int, parts: int = 3) -> np.ndarray:
    """``n`` unit vectors, each a random convex mix of ``parts`` real e5 vectors (Dirichlet
    weights): the corpus's chunks recombine law paragraphs, and a mix of real vectors stays near
    the real vectors' manifold, where a Gaussian of the same covariance spreads into every
    direction (a far harder and less realistic case: see ann_real)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for a in range(0, n, 100_000):
        m = min(100_000, n - a)
        pick = rng.integers(0, len(real), size=(m, parts))
        w = rng.dirichlet(np.ones(parts), size=m).astype(np.float32)
        x = np.einsum("mp,mpd->md", w, real[pick])
        out[a : a + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def stage_ann_mix(d: Path) -> dict[str, Any]:
    """Recall on real e5 vectors against recombined ones at the same size, then recombined ones
    at the sizes in ``MILLION_SIZES`` (default 100000), one HNSW setting (``MILLION_HNSW``)."""
    real, q = np.load(d / "e5_base.npy"), np.load(d / "e5_queries.npy")
    grid = [json.loads(os.environ.get("MILLION_HNSW", '{"m": 16, "ef_construction": 64}'))]
    out: dict[str, Any] = {
        "real": ann(real, q, grid, "e5 (real, laws chunks)"),
        "recombined_same_n": ann(recombined(real, len(real), 4), q, grid, "recombined e5"),
    }
    for n in (int(x) for x in os.environ.get("MILLION_SIZES", "100000").split(",")):
        out[f"recombined_{n}"] = ann(recombined(real, n, 5), q, grid, "recombined e5")
        (d / "ann_mix_partial.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


def stage_ann_1m(d: Path) -> dict[str, Any]:
    """HNSW at a million recombined e5 vectors, queries the real e5 query vectors; then a hybrid
    search composed as the hybrid method does it, over the 1M KB's real BM25 and this HNSW index
    (row i stands for the KB's i-th chunk: the vectors are synthetic, their ids arbitrary)."""
    real, q = np.load(d / "e5_base.npy"), np.load(d / "e5_queries.npy")
    grid = [json.loads(os.environ.get("MILLION_HNSW", '{"m": 16, "ef_construction": 64}'))]
    built: list[Any] = []
    base = recombined(real, 1_000_000, 3)
    from zhiku.index.base import auto_ef_search

    # 640: the efSearch a million-vector index gets when none is set (auto_ef_search)
    efs = tuple(sorted({*EF_SEARCH, 512, auto_ef_search(len(base)), 1024}))
    out = ann(base, q, grid, "recombined e5", keep=built, efs=efs)
    # the HNSW figures took long: on disk before the hybrid part
    (d / "ann_1m_partial.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    if (d / "stage-bm25.json").exists():
        try:
            out["hybrid"] = composed_hybrid(d, built[-1], out["grid"][-1]["sweep"], q)
        except Exception as e:  # the HNSW figures above took long: keep them whatever happens here
            out["hybrid"] = {"error": repr(e)}
    return out


def composed_hybrid(d: Path, index: Any, sweep: list[dict[str, Any]], qv: np.ndarray) -> dict[str, Any]:
    """kb.search("hybrid") step by step: the KB's bm25 method and this HNSW index each give their
    ``depth`` best, fused by zhiku's RRF, the top 10 read from the catalog. The keyword queries'
    own e5 vectors are the last 200 of ``qv`` (stage real); the query embedding is not timed."""
    from speed import make_queries

    from zhiku.retrieve.fusion import HybridOptions, fuse_lists
    from zhiku.types import Hit

    ok = [r for r in sweep if r["recall_at_10"] >= 0.95]
    ef = (ok[0] if ok else sweep[-1])["ef_search"]
    index._index.hnsw.efSearch = ef
    o = HybridOptions(of=["bm25", "vectors_hnsw"])
    texts = make_queries(200)
    vecs = list(qv[-200:, None, :])
    with open_kb(d) as kb:
        index.ids = list(kb.ready_method("bm25")._ids[: len(index.ids)])  # the KB's chunk ids

        def hybrid(i: int) -> int:
            bm25 = kb.ready_method("bm25")
            lists = [
                bm25.search(texts[i], o.depth),
                [Hit(c, s, "vectors_hnsw") for c, s, _ in index.search(vecs[i], o.depth)[0]],
            ]
            fused = fuse_lists(lists, 10, "hybrid", o.fusion, o.weights, o.normalize, o.k_rrf)
            return len(kb._searcher.attach(fused))

        lat, _ = timed(hybrid, list(range(len(texts))))
        bm25_lat, _ = timed(lambda i: len(kb.search(texts[i], 10, "bm25")), list(range(len(texts))))
    return {"ef_search": ef, "depth": o.depth, "fusion": o.fusion, "hybrid_ms": lat, "bm25_ms": bm25_lat}


def timed(fn: Any, items: list[Any]) -> tuple[dict[str, float], list[Any]]:
    from speed import pct

    fn(items[0])  # warm: loaded and answered once before timing
    ms, out = [], []
    for x in items:
        t = time.perf_counter()
        out.append(fn(x))
        ms.append((time.perf_counter() - t) * 1000)
    return {"p50": round(pct(ms, 50), 2), "p95": round(pct(ms, 95), 2), "load": round(load1(), 1)}, out


def bm25_parts(kb: Any, queries: list[str]) -> dict[str, Any]:
    """Where a BM25 query's time goes, and the top-k choice before this change against after.
    Score arrays are a chunk-count long (4 MB at a million): timed calls keep only what is small."""
    from zhiku.retrieve.methods.bm25 import top_rows

    m = kb.ready_method("bm25")
    out: dict[str, Any] = {}
    out["tokenize_and_score_ms"], _ = timed(lambda q: m.query_scores(q) is not None, queries)

    def old_top(s: np.ndarray) -> np.ndarray:  # bm25.py before: a partition over every chunk
        top = np.argpartition(-s, 9)[:10]
        top = top[np.argsort(-s[top], kind="stable")]
        return top[s[top] > 0]

    # scoring alone: bm25s's np.add.at over the concatenated posting lists, against one buffered
    # add per list (a list holds each chunk once, so the sums are the same)
    model = m._model  # zhiku's SavedScores (bm25s's arrays, memory-mapped), or a bm25s.BM25
    if hasattr(model, "scores"):
        mat = model.scores
        indptr, indices, data, num_docs = mat["indptr"], mat["indices"], mat["data"], mat["num_docs"]
    else:
        indptr, indices, data, num_docs = model.indptr, model.indices, model.data, model.num_docs
    qids = [ids for ids in (m._ids_of(m.ctx.tokenizer(q)) for q in queries) if ids]

    def buffered(ids: list[int]) -> np.ndarray:
        s = np.zeros(int(num_docs), dtype=np.float32)
        for t in ids:
            a, b = int(indptr[t]), int(indptr[t + 1])
            s[indices[a:b]] += data[a:b]
        return s

    out["score_add_at_ms"], _ = timed(lambda ids: m._model.get_scores(ids)[0], qids)
    out["score_buffered_ms"], _ = timed(lambda ids: buffered(ids)[0], qids)
    out["score_same"] = all(np.array_equal(m._model.get_scores(ids), buffered(ids)) for ids in qids[:30])
    out["postings_per_query_mean"] = round(
        float(np.mean([sum(int(indptr[t + 1] - indptr[t]) for t in ids) for ids in qids]))
    )
    scored = [m._model.get_scores(ids) for ids in qids[:100]]
    out["top10_before_ms"], before = timed(old_top, scored)
    out["top10_after_ms"], after = timed(lambda s: top_rows(s, 10), scored)
    same = [np.array_equal(s[a], s[b]) for s, a, b in zip(scored, before, after, strict=True)]
    out["same_top10_scores"] = round(float(np.mean(same)), 4)
    out["touched_share_mean"] = round(float(np.mean([(s > 0).mean() for s in scored])), 4)
    del scored
    out["count_star_ms"], _ = timed(lambda _: kb.catalog.chunk_count(), list(range(20)))
    hits = [m.search(q, 10) for q in queries[:100]]
    out["attach_ms"], _ = timed(lambda h: len(kb._searcher.attach(h)), hits)  # chunk texts from SQLite
    return out


def before_after(kb: Any, queries: list[str]) -> dict[str, Any]:
    """kb.search("bm25") as it was before this change (a COUNT(*) of the chunks per search, the top
    k by a partition over every chunk) and as it is, alternating query by query in one process,
    so both see the same load."""
    from speed import pct

    from zhiku.retrieve.methods import bm25

    current = bm25.top_rows

    def old_rows(s: np.ndarray, k: int) -> np.ndarray:
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return top[s[top] > 0]

    def old_search(q: str) -> list[Any]:
        kb.catalog.chunk_count()  # what ready() ran on every search
        bm25.top_rows = old_rows
        try:
            return kb.search(q, 10, "bm25")
        finally:
            bm25.top_rows = current

    kb.search(queries[0], 10, "bm25")
    # wall ms, and CPU ms of this process (what the query costs whatever the machine's load)
    times: dict[str, list[float]] = {"before": [], "after": [], "before_cpu": [], "after_cpu": []}
    same = 0
    for q in queries:
        t, c = time.perf_counter(), time.process_time()
        a = old_search(q)
        times["before"].append((time.perf_counter() - t) * 1000)
        times["before_cpu"].append((time.process_time() - c) * 1000)
        t, c = time.perf_counter(), time.process_time()
        b = kb.search(q, 10, "bm25")
        times["after"].append((time.perf_counter() - t) * 1000)
        times["after_cpu"].append((time.process_time() - c) * 1000)
        same += [h.score for h in a] == [h.score for h in b]
    out = {k: {"p50": round(pct(v, 50), 2), "p95": round(pct(v, 95), 2)} for k, v in times.items()}
    return out | {"same_scores": round(same / len(queries), 4), "load": round(load1(), 1)}


def hnsw_vs_exact(kb: Any, queries: list[str]) -> dict[str, Any]:
    """The KB's vectors_hnsw index against its exact vectors index, on the same query vectors."""
    exact, hnsw = kb.ready_method("vectors"), kb.ready_method("vectors_hnsw")
    qv = exact.embedder.embed_queries(queries)
    rows = list(qv[:, None, :])
    out: dict[str, Any] = {"params": dict(hnsw.options.index_options)}
    out["exact_ms"], truth = timed(lambda v: {c for c, _, _ in exact._index.search(v, 10)[0]}, rows)
    out["sweep"] = []
    for ef in EF_SEARCH + (512, 1024):
        hnsw._index._index.hnsw.efSearch = ef
        lat, got = timed(lambda v: {c for c, _, _ in hnsw._index.search(v, 10)[0]}, rows)
        recall = float(np.mean([len(t & g) / max(1, len(t)) for t, g in zip(truth, got, strict=True)]))
        out["sweep"].append({"ef_search": ef, "recall_at_10": round(recall, 4), **lat})
        print("kb hnsw", out["sweep"][-1], flush=True)
    hnsw._index._configure()  # back to the configured (or size-chosen) efSearch
    return out


def stage_query(d: Path) -> dict[str, Any]:
    from speed import make_queries

    queries = make_queries(300)
    out: dict[str, Any] = {"queries": len(queries)}
    with open_kb(d) as kb:
        built = {s.name for s in kb.status() if s.built}
        out["chunks"] = kb.catalog.chunk_count()
        out["built"] = sorted(built)
        out["index_mb"] = {s.name: round(s.bytes / 2**20, 1) for s in kb.status() if s.bytes}
        out["latency_ms"] = {}
        for name in ("bm25", "vectors", "vectors_hnsw", "hybrid", "hybrid_exact"):
            parts = {"hybrid": {"bm25", "vectors_hnsw"}, "hybrid_exact": {"bm25", "vectors"}}.get(
                name, {name}
            )
            if parts <= built:
                out["latency_ms"][name], _ = timed(lambda q, n=name: kb.search(q, 10, n), queries)
                print(name, out["latency_ms"][name], flush=True)
        if "bm25" in built:
            out["bm25_before_after"] = before_after(kb, queries)
            print("before/after", out["bm25_before_after"], flush=True)
            out["bm25_parts"] = bm25_parts(kb, queries)
        if {"vectors", "vectors_hnsw"} <= built:
            out["hnsw"] = hnsw_vs_exact(kb, queries)
    return out


def report(d: Path, out: Path) -> None:
    """Every finished stage's JSON (and its /usr/bin/time peak where the driver ran it) in one file."""
    import re

    stages: dict[str, Any] = {}
    for f in sorted(d.glob("stage-*.json")):
        name = f.stem.removeprefix("stage-")
        stages[name] = json.loads(f.read_text(encoding="utf-8"))
        log = d / f"stage-{name}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if found:
            stages[name]["time_v_max_rss_mb"] = round(int(found.group(1)) / 1024)
    extra = {f.stem: json.loads(f.read_text()) for f in d.glob("extra-*.json")}
    data = {
        "command": "OMP_NUM_THREADS=2 nice -n 5 .venv/bin/python benchmarks/million.py --stage STAGE "
        "(corpus; ingest --memo-tokens; bm25; vectors; vectors_hnsw; query; real; ann_real; ann_1m)",
        "machine": f"{os.cpu_count()} cores, shared by six sessions; each figure carries the 1-minute load",
        "stages": stages,
        **extra,
    }
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


STAGES = ("corpus", "ingest", "bm25", "vectors")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", required=True)
    p.add_argument("--dir", type=Path, default=Path("/tmp/million"))
    p.add_argument("--memo-tokens", action="store_true", help="ingest: each line tokenised once")
    args = p.parse_args(argv)
    if args.memo_tokens:
        memoize_tokens()
    d: Path = args.dir
    d.mkdir(parents=True, exist_ok=True)
    out = d / f"stage-{args.stage}.json"
    if args.stage == "report":
        report(d, RESULTS / "million.json")
        return 0
    if out.exists():
        print(f"{out} exists: stage done", file=sys.stderr)
        return 0
    load_before = load1()
    t0 = time.time()
    if args.stage == "corpus":
        res = stage_corpus(d)
    elif args.stage == "ingest":
        res = stage_ingest(d)
    elif args.stage in ("bm25", "vectors", "vectors_hnsw"):
        res = stage_build(d, args.stage)
    elif args.stage.startswith("query"):  # query, query2, …: a measurement again, a quieter moment
        res = stage_query(d)
    elif args.stage == "real":
        res = stage_real(d)
    elif args.stage == "ann_real":
        res = stage_ann_real(d)
    elif args.stage == "ann_mix":
        res = stage_ann_mix(d)
    elif args.stage == "ann_1m":
        res = stage_ann_1m(d)
    elif args.stage == "one_process":
        res = stage_one_process(d)
    else:
        raise SystemExit(f"unknown stage {args.stage}")
    res |= {
        "stage": args.stage,
        "memo_tokens": args.memo_tokens,
        "peak_rss_mb": rss_mb(),
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
        "children_cpu_s": round(sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]), 1),
        "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "wall_s": round(time.time() - t0, 1),
        "load_1min_before": load_before,
        "load_1min_after": load1(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
    }
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(json.dumps(res))
    return 0


_MEMO: dict[str, list[str]] = {}


def memoize_tokens() -> None:
    """Tokenise each whitespace-separated piece once (``--memo-tokens``), for this benchmark only.

    The corpus recombines a finite set of law paragraphs, so jieba would segment the same lines
    again and again. zhiku's tokenizer segments each run of CJK characters on its own (a space or
    a line break ends a run), so the tokens of a text are the tokens of its pieces in order: the
    catalog comes out the same (checked by ``--stage memo-check``), only faster."""
    from zhiku.text import tokenize

    class MemoTokenizer(tokenize.Tokenizer):
        def __call__(self, text: str) -> list[str]:
            out: list[str] = []
            plain = super().__call__
            for piece in text.split():
                got = _MEMO.get(piece)
                if got is None:
                    got = _MEMO[piece] = plain(piece)
                out += got
            return out

    real = tokenize.make_tokenizer

    def make(*args: Any, **kwargs: Any) -> tokenize.Tokenizer:
        tok = real(*args, **kwargs)
        tok.__class__ = MemoTokenizer
        return tok

    tokenize.make_tokenizer = make  # type: ignore[assignment]


if __name__ == "__main__":
    raise SystemExit(main())
