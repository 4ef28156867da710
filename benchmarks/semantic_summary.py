"""Summarise the ``zhiku eval`` runs of issue 10 (e5 and the default fusion) into one committed file.

    .venv/bin/python benchmarks/semantic_summary.py

Reads benchmarks/results/semantic/<run>/results.json (written by the commands below; they quote the
licensed datasets, so they stay local) and writes benchmarks/results/semantic/summary.json plus one
Markdown table per run on stdout, for BENCHMARKS.md. Each table is one ``zhiku eval`` run.

    zhiku eval ../shared/data/cmrc2018/cmrc2018_dev.json --methods bm25,dense,hybrid \
        --out benchmarks/results/semantic/cmrc2018_dev
    zhiku eval ../shared/data/scifact-beir --config benchmarks/data/en_methods.toml \
        --methods bm25,dense,hybrid --out benchmarks/results/semantic/scifact
    zhiku eval ../shared/data/rgb-zh/zh_refine.json --methods bm25,dense,hybrid \
        --out benchmarks/results/semantic/rgb_zh
    zhiku eval ../shared/data/squad-v1.1/dev-v1.1.json --config benchmarks/data/en_methods.toml \
        --methods bm25,dense,hybrid,minilm,hybrid-minilm --out benchmarks/results/semantic/squad
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "results" / "semantic"
COLUMNS = ["hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@10"]


def main() -> int:
    summary = {}
    for results in sorted(HERE.glob("*/results.json")):
        data = json.loads(results.read_text(encoding="utf-8"))
        s = data["settings"]
        run = {
            "dataset": data["dataset"],
            "command": data.get("command"),
            "created": data.get("created"),
            "queries": s.get("queries"),
            "passages": s.get("passages"),
            "chunks": s.get("chunks"),
            "methods": {
                m["method"]: {
                    **{c: round(m["metrics"][c], 4) for c in COLUMNS if c in m["metrics"]},
                    "p50_ms": round(m["latency_ms_p50"], 1),
                    "p95_ms": round(m["latency_ms_p95"], 1),
                    "build_s": m["build_seconds"],
                    "config": s.get(f"method {m['method']}"),
                }
                for m in data["methods"]
            },
        }
        summary[results.parent.name] = run
        sizes = f"{run['queries']} queries, {run['passages']} passages, {run['chunks']} chunks"
        print(f"\n### {results.parent.name}: {sizes}")
        print(f"`{run['command']}`\n")
        print("| method | " + " | ".join(COLUMNS) + " | p50 ms |")
        print("| :--- |" + " ---: |" * (len(COLUMNS) + 1))
        for name, m in run["methods"].items():
            cells = [f"{m[c]:.3f}" if c in m else "-" for c in COLUMNS]
            print(f"| {name} | " + " | ".join(cells) + f" | {m['p50_ms']} |")
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
