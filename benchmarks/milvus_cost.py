"""What a Milvus server costs per query against the embedded Faiss index, on the same KB, in one run.

    .venv/bin/python benchmarks/milvus_cost.py [--chunks 20000] [--queries 300]

Needs the server venv (``make milvus-server``). One KB, one synthetic Chinese corpus (the laws
corpus recombined, as ``speed.py`` does), three dense methods over the same hashing vectors (384
dims): ``faiss`` (exact, in process), ``milvus`` (FLAT, exact, on a Milvus standalone server on
loopback) and ``milvus-hnsw``. Queries alternate between the methods so that load on this shared
machine falls on all of them alike. Latency is ``KnowledgeBase.search`` end to end (embedding the
query, the index, reading the hits' text from the catalog), warm.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from sections import RESULTS, commit, machine, md_table, replace_section  # noqa: E402
from speed import make_queries, pct, write_corpus  # noqa: E402

METHODS = ("faiss", "milvus", "milvus-hnsw")


def run(chunks: int, n_queries: int) -> dict[str, Any]:
    from tests.helpers.milvus_server import MilvusServer

    from zhiku.config import KBConfig, MethodConfig
    from zhiku.service import KnowledgeBase

    tmp = Path(tempfile.mkdtemp(prefix="zhiku-milvus-cost-"))
    server = MilvusServer(tmp / "milvus")
    server.start()
    try:
        vec = {"embedder": "hashing", "dim": 384}
        methods = {
            "faiss": MethodConfig(kind="dense", options={**vec, "index": "faiss-flat"}),
            "milvus": MethodConfig(
                kind="dense", options={**vec, "index": "milvus", "index_options": {"uri": server.uri}}
            ),
            "milvus-hnsw": MethodConfig(
                kind="dense",
                options={
                    **vec,
                    "index": "milvus",
                    "index_options": {"uri": server.uri, "index_type": "HNSW"},
                },
            ),
        }
        write_corpus(tmp / "docs", chunks)
        out: dict[str, Any] = {"build_s": {}, "latency_ms": {}}
        with KnowledgeBase.open(
            str(tmp / "kb"), config=KBConfig(default_method="faiss", methods=methods)
        ) as kb:
            report, _ = kb.ingest([tmp / "docs"], build=False)
            out["chunks"] = report.chunks
            for name in METHODS:
                t0 = time.perf_counter()
                kb.build(names=[name])
                out["build_s"][name] = round(time.perf_counter() - t0, 2)
            queries = make_queries(n_queries)
            times: dict[str, list[float]] = {m: [] for m in METHODS}
            for m in METHODS:
                kb.search(queries[0], 10, m)  # warm: loaded and answered once
            for q in queries:
                for m in METHODS:
                    t0 = time.perf_counter()
                    kb.search(q, 10, m)
                    times[m].append((time.perf_counter() - t0) * 1000)
            # Same hits? FLAT on the server is exact, as Faiss is: top-10 overlap on every query.
            same = [
                len(
                    {h.chunk_id for h in kb.search(q, 10, "faiss")}
                    & {h.chunk_id for h in kb.search(q, 10, "milvus")}
                )
                / 10
                for q in queries[:50]
            ]
            out["top10_agreement_faiss_vs_milvus"] = round(sum(same) / len(same), 3)
        for m in METHODS:
            out["latency_ms"][m] = {"p50": round(pct(times[m], 50), 2), "p95": round(pct(times[m], 95), 2)}
        return out
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def render(r: dict[str, Any], command: str) -> str:
    lat = r["latency_ms"]
    rows = [
        [
            m,
            f"{r['build_s'][m]:.1f}",
            f"{lat[m]['p50']:.2f}",
            f"{lat[m]['p95']:.2f}",
            f"+{lat[m]['p50'] - lat['faiss']['p50']:.2f}",
        ]
        for m in METHODS
    ]
    return "\n".join(
        [
            "## Milvus server against embedded Faiss (`benchmarks/milvus_cost.py`)",
            "",
            f"Measured on {machine()}, commit `{commit()}`, load average {r['load']}. Command:",
            "",
            f"```\n{command}\n```",
            "",
            f"One KB of {r['chunks']:,} chunks, the same hashing vectors (384 dims) in three indexes; "
            "Milvus standalone 2.3.5 (PyPI `milvus`) on loopback, client pymilvus 3.0.2. Latency is "
            "`KnowledgeBase.search`, warm, queries alternating between methods.",
            "",
            md_table(["method", "build s", "p50 ms", "p95 ms", "p50 vs faiss"], rows),
            "",
            "Top-10 agreement of `milvus` (FLAT) with `faiss` (exact): "
            f"{r['top10_agreement_faiss_vs_milvus']}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    import os
    import shlex

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=20000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--no-markdown", action="store_true")
    args = p.parse_args(argv)
    r = run(args.chunks, args.queries)
    r["load"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(json.dumps(r, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "milvus_cost.json").write_text(json.dumps(r, indent=1), encoding="utf-8")
    if not args.no_markdown:
        command = shlex.join([".venv/bin/python", "benchmarks/milvus_cost.py", *(argv or sys.argv[1:])])
        replace_section("milvus", render(r, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
