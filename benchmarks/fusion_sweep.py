"""Choose fusion settings on TUNING splits only: CMRC 2018 trial (zh) and SciFact's train queries (en).

    ZHIKU_VECTOR_CACHE=/tmp/zhiku-vectors .venv/bin/python benchmarks/fusion_sweep.py \
        [--datasets cmrc-trial,scifact-train] [--parts bm25,e5]

The test splits that README and BENCHMARKS.md report (CMRC dev, SciFact test, SQuAD dev, RGB, the
laws QA set) are never read here. Each part is searched once per query (depth 50); every fusion
(RRF with weights, score fusion with min-max or z-score normalisation and weights) is then
computed from those lists and scored by the same judge and metrics as ``zhiku eval``. Writes
benchmarks/results/fusion_sweep.json; the chosen defaults live in ``config.default_methods``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, machine  # noqa: E402

from zhiku.config import KBConfig  # noqa: E402
from zhiku.eval import load_dataset  # noqa: E402
from zhiku.eval.corpus_kb import ingest_corpus  # noqa: E402
from zhiku.eval.judges import PassageJudge  # noqa: E402
from zhiku.eval.runner import Fetched, score_hits  # noqa: E402
from zhiku.retrieve.fusion import reciprocal_rank_fusion, score_fusion  # noqa: E402
from zhiku.types import Hit  # noqa: E402

TUNING = {
    "cmrc-trial": ("cmrc2018/cmrc2018_trial.json", "test"),
    "scifact-train": ("scifact-beir", "train"),
}
WEIGHTS = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0]


def configs(n_parts: int) -> list[tuple[str, str, tuple[float, ...]]]:
    out = []
    grid = [w for w in itertools.product(WEIGHTS, repeat=n_parts) if w[0] == 1.0]  # relative to part 0
    for w in grid:
        out.append(("rrf", "-", w))
        out.append(("score", "minmax", w))
        out.append(("score", "zscore", w))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(TUNING))
    p.add_argument("--parts", default="bm25,e5", help="methods of the default config to fuse")
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--out", type=Path, default=RESULTS / "fusion_sweep.json")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/zhiku-sweep"))
    args = p.parse_args(argv)
    parts = args.parts.split(",")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for key in args.datasets.split(","):
        rel, split = TUNING[key]
        ds = load_dataset(DATA / rel, split=split)
        root = args.workdir / f"{key}-{int(time.time())}"
        kb, aliases, info = ingest_corpus(ds, root, KBConfig())
        t0 = time.perf_counter()
        kb.build(names=parts)
        build_s = time.perf_counter() - t0
        queries = list(ds.queries.values())
        lists = {m: kb.search_many(queries, args.depth, m) for m in parts}
        judge = PassageJudge(ds, aliases)
        by_id = {h.chunk_id: h for m in parts for hits in lists[m] for h in hits}

        def score(name: str, fused: list[list[Hit]], ds=ds, judge=judge, by_id=by_id) -> dict[str, float]:  # type: ignore[no-untyped-def]
            attached = [[by_id[h.chunk_id].with_(score=h.score, method=name) for h in hits] for hits in fused]
            return score_hits(name, ds, judge, Fetched(attached, [0.0], 0.0), k=10, ks=[1, 5, 10]).metrics

        rows = [{"config": f"{m} alone", **score(m, lists[m])} for m in parts]
        for fusion, norm, w in configs(len(parts)):
            per_query = [[lists[m][i] for m in parts] for i in range(len(queries))]
            if fusion == "rrf":
                fused = [reciprocal_rank_fusion(ls, 30, "h", list(w)) for ls in per_query]
            else:
                fused = [score_fusion(ls, 30, "h", list(w), norm) for ls in per_query]
            rows.append(
                {
                    "config": f"{fusion} {norm} weights={list(w)}",
                    "fusion": fusion,
                    "normalize": norm,
                    "weights": list(w),
                    **score("h", fused),
                }
            )
        best = max((r for r in rows if "weights" in r), key=lambda r: r["mrr@10"])
        results[key] = {
            "dataset": rel,
            "split": split,
            "queries": len(queries),
            "chunks": info["chunks"],
            "parts": parts,
            "build_seconds": round(build_s, 1),
            "machine": machine(),
            "rows": rows,
            "best": best,
        }
        print(
            f"== {key}: {len(queries)} queries, {info['chunks']} chunks, build {build_s:.0f}s",
            file=sys.stderr,
        )
        for r in rows[: len(parts)] + sorted(rows[len(parts) :], key=lambda r: -r["mrr@10"])[:8]:
            print(
                f"  {r['config']:<42} MRR@10 {r['mrr@10']:.3f} hit@1 {r['hit@1']:.3f} hit@5 {r['hit@5']:.3f}",
                file=sys.stderr,
            )
        kb.close()
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
