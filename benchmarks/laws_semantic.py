"""BM25, e5 and their fusions on the laws QA set, split by question kind (direct vs everyday wording).

    ZHIKU_VECTOR_CACHE=/tmp/zhiku-vectors .venv/bin/python benchmarks/laws_semantic.py --kb PATH_TO_LAWS_KB \
        [--methods bm25,e5,hybrid,bm25+e5]

The KB is built from ../shared/data/cn-laws-lawrefbook (all of it, or a sub-corpus: say which in the
results). The QA set (benchmarks/data/laws_qa.jsonl) is a test set: nothing is tuned on it.
Writes benchmarks/results/laws_semantic.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from sections import machine  # noqa: E402

from zhiku.eval import load_dataset, run_eval  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kb", required=True)
    p.add_argument("--methods", default="bm25,e5,hybrid,bm25+e5")
    p.add_argument("--qa", type=Path, default=ROOT / "benchmarks" / "data" / "laws_qa.jsonl")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "laws_semantic.json")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    kinds = {}
    for line in args.qa.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        kinds[row["id"]] = row["kind"]
    ds = load_dataset(args.qa)
    with KnowledgeBase.open(args.kb, create=False) as kb:
        chunks, docs = kb.chunk_count(), len(kb.documents())
        report = run_eval(ds, args.methods.split(","), kb=kb, k=10, latency_sample=20)
    out: dict[str, object] = {
        "kb": args.kb,
        "documents": docs,
        "chunks": chunks,
        "note": args.note,
        "machine": machine(),
        "queries": len(ds.queries),
        "methods": {},
    }
    for m in report.methods:
        rows: dict[str, dict[str, float]] = {}
        for kind in ("all", "direct", "paraphrase"):
            qs = [q for q in m.per_query if kind == "all" or kinds.get(q.query_id) == kind]
            ranks = [q.first_rank for q in qs]
            n = max(len(ranks), 1)
            rows[kind] = {
                "n": len(ranks),
                "hit@1": sum(1 for r in ranks if r and r <= 1) / n,
                "hit@5": sum(1 for r in ranks if r and r <= 5) / n,
                "mrr@10": sum(1 / r for r in ranks if r and r <= 10) / n,
            }
        out["methods"][m.method] = {**rows, "p50_ms": m.latency_ms_p50}  # type: ignore[index]
        cells = [
            f"{k} h1 {v['hit@1']:.3f} h5 {v['hit@5']:.3f} mrr {v['mrr@10']:.3f}" for k, v in rows.items()
        ]
        print(f"{m.method:<10}", "  ".join(cells))
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
