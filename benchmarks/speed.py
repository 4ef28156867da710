"""Ingest throughput, index build time, warm query latency and memory as the corpus grows.

    .venv/bin/python benchmarks/speed.py [--sizes 10000,100000] [--queries 300] [--minilm-sample 300]

The corpus is synthetic but real Chinese: documents are recombined from the paragraphs of the laws
corpus in ../shared/data/cn-laws-lawrefbook (seeded), written as Markdown files and ingested with
``KnowledgeBase.ingest`` as ``zhiku ingest`` does. Each size runs in its own process, so its peak
memory (``resource.getrusage``, max RSS) is its own.

Methods: ``bm25`` (jieba); ``vectors``, the dense method with the deterministic hashing embedder at
384 dimensions (MiniLM's size) over an exact Faiss index, which measures the index's build and
search cost without a model; ``hybrid`` (RRF of both). MiniLM itself is measured once, on a sample:
its chunks/s gives the embedding time for any size, and its single-query embedding latency is what
a real dense query adds to the ``vectors`` latency.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, commit, machine, md_table, replace_section  # noqa: E402

LAWS = DATA / "cn-laws-lawrefbook"
CHUNK_CHARS = 330  # mean chunk length on the laws corpus, to size the synthetic corpus


def paragraphs() -> list[str]:
    out = []
    for f in sorted(LAWS.rglob("*.md")):
        if f.name == "README.md":
            continue
        for line in f.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if len(line) >= 20 and not line.startswith(("#", "<!--")):
                out.append(line)
    return out


def write_corpus(folder: Path, chunks: int, seed: int = 0) -> tuple[int, int]:
    """Documents of 20-60 paragraphs each until about ``chunks`` chunks' worth of text."""
    rng = random.Random(seed)
    paras = paragraphs()
    folder.mkdir(parents=True, exist_ok=True)
    target, chars, n = chunks * CHUNK_CHARS, 0, 0
    while chars < target:
        body = [f"第{i + 1}条 {rng.choice(paras)}" for i in range(rng.randint(20, 60))]
        text = f"# 合成规定第{n}号\n\n## 第一章 总则\n\n" + "\n\n".join(body) + "\n"
        (folder / f"doc{n:07d}.md").write_text(text, encoding="utf-8")
        chars += len(text)
        n += 1
    return n, chars


def make_queries(n: int, seed: int = 1) -> list[str]:
    """Keyword-style queries: a 6-14 character span of a random paragraph, without punctuation."""
    rng = random.Random(seed)
    paras = paragraphs()
    out = []
    while len(out) < n:
        p = re.sub(r"[^\u4e00-\u9fff]", "", rng.choice(paras))
        if len(p) >= 16:
            start = rng.randrange(0, len(p) - 14)
            out.append(p[start : start + rng.randint(6, 14)])
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    pos = (len(s) - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


HNSW = {"m": 32, "ef_construction": 200, "ef_search": 64}  # zhiku's faiss-hnsw defaults


def hnsw_vs_exact(vectors_dir: Path, kb: Any, queries: list[str]) -> dict[str, Any]:
    """HNSW built incrementally from the ``vectors`` build's embeddings.npy (the same vectors, no
    second embedding), against the exact Faiss index on the same query vectors: index-only latency
    for both (the crossover), and HNSW's recall@10 against exact."""
    import numpy as np

    import zhiku.index.faiss  # noqa: F401  (registers faiss-flat and faiss-hnsw)
    from zhiku.index.base import fill_index, indexes

    matrix = np.load(vectors_dir / "embeddings.npy", mmap_mode="r")
    ids = [str(i) for i in range(len(matrix))]
    t0 = time.perf_counter()
    hnsw = indexes.get("faiss-hnsw")(matrix.shape[1], "cosine", **HNSW)
    fill_index(hnsw, ids, matrix)
    build_s = time.perf_counter() - t0
    exact = indexes.get("faiss-flat").load(vectors_dir, matrix.shape[1], "cosine")
    qv = kb.method("vectors").embedder.embed_queries(queries)
    keep = [i for i in range(len(qv)) if qv[i].any()]
    out: dict[str, Any] = {"build_s": round(build_s, 2), "params": HNSW, "queries": len(keep), "sweep": []}

    def timed(index: Any) -> tuple[float, float, list[set[str]]]:
        index.search(qv[:1], 10)
        times, found = [], []
        for i in keep:
            t0 = time.perf_counter()
            row = index.search(qv[i : i + 1], 10)[0]
            times.append((time.perf_counter() - t0) * 1000)
            found.append({cid for cid, _, _ in row})
        return round(pct(times, 50), 3), round(pct(times, 95), 3), found

    out["exact_p50_ms"], out["exact_p95_ms"], exact_found = timed(exact)
    pos = {cid: str(i) for i, cid in enumerate(exact.ids)}  # exact's chunk ids -> row numbers
    truth = [{pos[c] for c in e} for e in exact_found]
    # efSearch trades latency for recall: the first value reaching 0.95 is the one reported.
    for ef in (64, 128, 256, 512, 1024):
        hnsw._index.hnsw.efSearch = ef
        p50, p95, got = timed(hnsw)
        recall = float(np.mean([len(t & g) / max(1, len(t)) for t, g in zip(truth, got, strict=True)]))
        out["sweep"].append({"ef_search": ef, "p50_ms": p50, "p95_ms": p95, "recall_at_10": round(recall, 4)})
    best = next((r for r in out["sweep"] if r["recall_at_10"] >= 0.95), out["sweep"][-1])
    out.update(
        ef_search=best["ef_search"],
        hnsw_p50_ms=best["p50_ms"],
        hnsw_p95_ms=best["p95_ms"],
        recall_at_10=best["recall_at_10"],
    )
    return out


def one_size(chunks: int, n_queries: int, hnsw: bool = True) -> dict[str, Any]:
    from zhiku.config import KBConfig, MethodConfig
    from zhiku.service import KnowledgeBase

    tmp = Path(tempfile.mkdtemp(prefix="zhiku-speed-"))
    docs, chars = write_corpus(tmp / "docs", chunks)
    config = KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "vectors": MethodConfig(kind="dense", options={"embedder": "hashing", "dim": 384}),
            "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "vectors"]}),
        }
    )
    out: dict[str, Any] = {"target_chunks": chunks, "documents": docs}
    with KnowledgeBase.open(str(tmp / "kb"), config=config) as kb:
        t0 = time.perf_counter()
        report, _ = kb.ingest([tmp / "docs"], build=False)
        secs = time.perf_counter() - t0
        out.update(ingest_figures(docs, report.chunks, report.chars, secs))
        measure(kb, out, n_queries, hnsw)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return out


def ingest_figures(docs: int, chunks: int, chars: int, secs: float) -> dict[str, Any]:
    return dict(
        chunks=chunks,
        chars=chars,
        ingest_s=round(secs, 2),
        docs_per_s=round(docs / secs, 1),
        chunks_per_s=round(chunks / secs, 1),
        chars_per_s=round(chars / secs),
        rss_after_ingest_mb=round(rss_mb()),
    )


def resume(kb_dir: Path, target: int, n_queries: int, hnsw: bool) -> dict[str, Any]:
    """Finish a size whose ingest completed but whose process died after it (the first 1M run
    died on an import error right after its last document was stored): the ingest figures come
    from the catalog's own records (the run's start, each document's ``ingested_at``); the build
    and query stages run here as in ``one_size``. ``rss_after_ingest_mb`` is then unknown (the
    dead process's peak is in the log of the run)."""
    import sqlite3

    from zhiku.service import KnowledgeBase

    db = sqlite3.connect(f"file:{kb_dir / 'catalog.sqlite'}?mode=ro", uri=True)
    started = db.execute("SELECT min(started) FROM runs").fetchone()[0]
    docs, last, chars, chunks = db.execute(
        "SELECT count(*), max(ingested_at), sum(chars), sum(n_chunks) FROM documents"
    ).fetchone()
    db.close()
    out: dict[str, Any] = {"target_chunks": target, "documents": docs, "resumed": str(kb_dir)}
    out.update(ingest_figures(docs, chunks, chars, last - started))
    out["rss_after_ingest_mb"] = None
    with KnowledgeBase.open(str(kb_dir), create=False) as kb:
        measure(kb, out, n_queries, hnsw)
    return out


def measure(kb: Any, out: dict[str, Any], n_queries: int, hnsw: bool) -> None:
    out["build_s"] = {}
    out["rss_after_mb"] = {"ingest": out["rss_after_ingest_mb"]}
    for name in ("bm25", "vectors"):
        t0 = time.perf_counter()
        kb.build(names=[name])
        out["build_s"][name] = round(time.perf_counter() - t0, 2)
        out["rss_after_mb"][name] = round(rss_mb())
    out["rss_after_build_mb"] = round(rss_mb())
    if hnsw:
        out["hnsw"] = hnsw_vs_exact(kb.layout.index_dir("vectors"), kb, make_queries(n_queries))
        out["build_s"]["hnsw"] = out["hnsw"]["build_s"]
        out["rss_after_mb"]["hnsw"] = round(rss_mb())
    out["index_mb"] = {s.name: round(s.bytes / 2**20, 1) for s in kb.status() if s.bytes}
    queries = make_queries(n_queries)
    out["latency_ms"] = {}
    for name in ("bm25", "vectors", "hybrid"):
        kb.search(queries[0], 10, name)  # warm: loaded and answered once before timing
        times = []
        for q in queries:
            t0 = time.perf_counter()
            kb.search(q, 10, name)
            times.append((time.perf_counter() - t0) * 1000)
        out["latency_ms"][name] = {"p50": round(pct(times, 50), 2), "p95": round(pct(times, 95), 2)}
    out["rss_peak_mb"] = round(rss_mb())


def minilm(sample: int, n_queries: int) -> dict[str, Any]:
    """MiniLM's embedding rate on real law chunks and its single-query embedding latency."""
    from zhiku.config import KBConfig
    from zhiku.embed.sbert import SentenceTransformerEmbedder
    from zhiku.ingest.chunking import chunk_text
    from zhiku.text.normalise import clean

    rng = random.Random(0)
    files = sorted(f for f in LAWS.rglob("*.md") if f.name != "README.md")
    chunks: list[str] = []
    for f in rng.sample(files, len(files)):
        text = clean(f.read_text(encoding="utf-8"))
        chunks += [text[s.start : s.end] for s in chunk_text(text, KBConfig().chunking)]
        if len(chunks) >= sample:
            break
    chunks = chunks[:sample]
    emb = SentenceTransformerEmbedder()
    emb.embed(chunks[:8])  # load the model
    t0 = time.perf_counter()
    emb.embed(chunks)
    rate = len(chunks) / (time.perf_counter() - t0)
    times = []
    for q in make_queries(n_queries):
        t0 = time.perf_counter()
        emb.embed_queries([q])
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "chunks": len(chunks),
        "mean_chars": round(sum(map(len, chunks)) / len(chunks)),
        "chunks_per_s": round(rate, 1),
        "query_ms_p50": round(pct(times, 50), 2),
        "query_ms_p95": round(pct(times, 95), 2),
    }


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8), dpi=110)
    FigureCanvasAgg(fig)
    a, b, c = fig.subplots(1, 3)
    xs = [r["chunks"] for r in rows]
    a.plot(xs, [r["ingest_s"] for r in rows], marker="o", label="ingest (jieba, catalog)")
    for name in ("bm25", "vectors"):
        a.plot(xs, [r["build_s"][name] for r in rows], marker="o", label=f"build {name}")
    a.set(title="time to ingest / build (s)", xscale="log", yscale="log", xlabel="chunks")
    for name in ("bm25", "vectors", "hybrid"):
        b.plot(xs, [r["latency_ms"][name]["p50"] for r in rows], marker="o", label=f"{name} p50")
        b.plot(xs, [r["latency_ms"][name]["p95"] for r in rows], marker="x", ls="--", label=f"{name} p95")
    b.set(title="warm query latency (ms)", xscale="log", yscale="log", xlabel="chunks")
    c.plot(xs, [r["rss_peak_mb"] for r in rows], marker="o")
    c.set(title="peak memory (MB, max RSS)", xscale="log", xlabel="chunks")
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
    a.legend(fontsize="x-small")
    b.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path)


def rss_cell(r: dict[str, Any]) -> str:
    a = r.get("rss_after_mb")
    if not a:
        return ""
    return " / ".join("-" if a.get(k) is None else f"{a[k]:,}" for k in ("ingest", "bm25", "vectors"))


def hnsw_cells(r: dict[str, Any]) -> list[str]:
    if "hnsw" not in r:
        return ["", "", ""]
    h = r["hnsw"]
    return [
        f"{h['build_s']:.1f}",
        f"{h['exact_p50_ms']:.2f} / {h['hnsw_p50_ms']:.2f}",
        f"{h['recall_at_10']:.3f} (ef {h.get('ef_search', 64)})",
    ]


def render(rows: list[dict[str, Any]], mini: dict[str, Any]) -> str:
    headers = [
        "chunks",
        "docs",
        "ingest s",
        "docs/s",
        "chunks/s",
        "chars/s",
        "build bm25 s",
        "build vectors s",
        "bm25 p50/p95 ms",
        "vectors p50/p95 ms",
        "hybrid p50/p95 ms",
        "peak RSS MB",
        "index MB",
        "RSS after ingest / bm25 / vectors MB",
        "HNSW build s",
        "index-only p50 exact / HNSW ms",
        "HNSW recall@10",
    ]
    table = []
    for r in rows:
        lat = r["latency_ms"]
        table.append(
            [
                f"{r['chunks']:,}",
                f"{r['documents']:,}",
                f"{r['ingest_s']:.1f}",
                f"{r['docs_per_s']:.0f}",
                f"{r['chunks_per_s']:,.0f}",
                f"{r['chars_per_s']:,.0f}",
                f"{r['build_s']['bm25']:.1f}",
                f"{r['build_s']['vectors']:.1f}",
                *[f"{lat[n]['p50']:.2f} / {lat[n]['p95']:.2f}" for n in ("bm25", "vectors", "hybrid")],
                f"{r['rss_peak_mb']:,}",
                " + ".join(f"{k} {v}" for k, v in r["index_mb"].items()),
                rss_cell(r),
                *hnsw_cells(r),
            ]
        )
    biggest = rows[-1]["chunks"] if rows else 0
    return "\n".join(
        [
            "## Speed and scale (`benchmarks/speed.py`)",
            "",
            f"Measured on {machine()}, commit `{commit()}`. Commands:",
            "",
            "```",
            *dict.fromkeys(r.get("command", "") for r in rows),
            "```",
            "",
            md_table(headers, table),
            "",
            "![ingest, build, latency and memory against corpus size](benchmarks/results/speed.png)",
            "",
            f"- MiniLM (all-MiniLM-L6-v2) on {mini['chunks']} real law chunks (mean {mini['mean_chars']} chars): "  # noqa: E501
            f"{mini['chunks_per_s']} chunks/s, so embedding {biggest:,} chunks would take "
            f"{biggest / mini['chunks_per_s'] / 60:.0f} min on this machine; one query embeds in "
            f"{mini['query_ms_p50']} ms p50 / {mini['query_ms_p95']} ms p95, to add to the `vectors` latency "
            "for a real dense query.",
            "- `vectors` = the dense method with the hashing embedder (384 dims, exact Faiss index): "
            "what the index costs, without a model.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000", help="target chunk counts, comma-separated")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--minilm-sample", type=int, default=300)
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child process: one size
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--no-markdown", action="store_true")
    p.add_argument("--no-hnsw", action="store_true", help="skip the HNSW-against-exact measurement")
    p.add_argument("--resume", type=Path, default=None, help=argparse.SUPPRESS)  # with --one: see resume()
    p.add_argument("--render-only", action="store_true", help="redraw the chart and section from speed.json")
    args = p.parse_args(argv)
    if args.render_only:
        data = json.loads((args.out / "speed.json").read_text())
        chart(data["sizes"], args.out / "speed.png")
        replace_section("speed", render(data["sizes"], data["minilm"]))
        return 0
    if args.one and args.resume:
        print(json.dumps(resume(args.resume, args.one, args.queries, not args.no_hnsw)))
        return 0
    if args.one:
        print(json.dumps(one_size(args.one, args.queries, not args.no_hnsw)))
        return 0
    given = argv if argv is not None else sys.argv[1:]
    command = shlex.join([".venv/bin/python", "benchmarks/speed.py", *given])
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        extra = ["--no-hnsw"] if args.no_hnsw else []
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--queries", str(args.queries), *extra],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]) | {"command": command})
        print(f"{size}: {time.perf_counter() - t0:.0f} s {rows[-1]}", file=sys.stderr)
    # Sizes not run this time keep their last measurement, so the curve can be extended one size
    # at a time; MiniLM is measured again only when asked (--minilm-sample > 0).
    old = json.loads((args.out / "speed.json").read_text()) if (args.out / "speed.json").exists() else {}
    done = {r["target_chunks"] for r in rows}
    rows = sorted(
        rows + [r for r in old.get("sizes", []) if r["target_chunks"] not in done],
        key=lambda r: r["target_chunks"],
    )
    mini = minilm(args.minilm_sample, 100) if args.minilm_sample > 0 else old["minilm"]
    args.out.mkdir(parents=True, exist_ok=True)
    data = {"sizes": rows, "minilm": mini}
    (args.out / "speed.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    chart(rows, args.out / "speed.png")
    if not args.no_markdown:
        replace_section("speed", render(rows, mini))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
