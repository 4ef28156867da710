"""Choose fusion settings on TUNING splits only: CMRC 2018 trial (zh), the laws development set (zh,
everyday wording), SciFact's train queries (en) and SQuAD dev questions that no test run asks (en).

    ZHIKU_VECTOR_CACHE=/tmp/zhiku-vectors .venv/bin/python benchmarks/fusion_sweep.py \
        [--datasets cmrc-trial,laws-dev,scifact-train,squad-tune] [--parts bm25,e5] [--laws-kb PATH]

The test splits that README and BENCHMARKS.md report (CMRC dev, SciFact test, the 3,000 SQuAD dev
questions of ``zhiku eval --limit 3000``, RGB, the laws QA set) are never read here; ``squad-tune``
is 3,000 of the other 7,570 SQuAD dev questions (same paragraphs). ``laws-dev``
(benchmarks/data/laws_dev.jsonl) asks about other documents than the laws QA test set, and is
run against an existing laws KB (``--laws-kb``) whose methods are named like ``--parts``. Each
part is searched once per query (depth 50); every fusion (RRF with weights, score fusion with
min-max or z-score normalisation and weights) is then computed from those lists and scored by the
same judge and metrics as ``zhiku eval``. Writes benchmarks/results/fusion_sweep.json; the chosen
defaults live in ``config.default_methods``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, machine  # noqa: E402

from zhiku.config import KBConfig  # noqa: E402
from zhiku.eval import load_dataset  # noqa: E402
from zhiku.eval.corpus_kb import ingest_corpus  # noqa: E402
from zhiku.eval.datasets import Dataset  # noqa: E402
from zhiku.eval.judges import EvidenceJudge, Judge, PassageJudge  # noqa: E402
from zhiku.eval.runner import Fetched, kb_chunks, score_hits  # noqa: E402
from zhiku.retrieve.fusion import reciprocal_rank_fusion, score_fusion  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402
from zhiku.types import Hit  # noqa: E402

TUNING = {
    "cmrc-trial": ("cmrc2018/cmrc2018_trial.json", "test"),
    "laws-dev": ("benchmarks/data/laws_dev.jsonl", "-"),
    "scifact-train": ("scifact-beir", "train"),
    # SQuAD dev questions the test runs never ask: they sample 3,000 with `--limit 3000` (seed 0);
    # 3,000 of the other 7,570 are drawn here with another seed.
    "squad-tune": ("squad-v1.1/dev-v1.1.json", "test"),
}
SQUAD_TEST_LIMIT = 3000
ROOT = Path(__file__).resolve().parents[1]
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
    p.add_argument("--parts", default="bm25,e5", help="methods of the default config (or --config) to fuse")
    p.add_argument(
        "--config", type=Path, help="a zhiku.toml whose methods the KBs get (default: zhiku's defaults)"
    )
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--out", type=Path, default=RESULTS / "fusion_sweep.json")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/zhiku-sweep"))
    p.add_argument("--laws-kb", type=Path, help="an existing laws KB for laws-dev (methods named as --parts)")
    p.add_argument(
        "--worst-over",
        help="datasets (already in --out or run now) for the never-loses ranking (default --datasets)",
    )
    args = p.parse_args(argv)
    parts = args.parts.split(",")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for key in args.datasets.split(","):
        rel, split = TUNING[key]
        judge: Judge
        if key == "laws-dev":
            if args.laws_kb is None:
                p.error("laws-dev needs --laws-kb PATH (a KB built from ../shared/data/cn-laws-lawrefbook)")
            ds = load_dataset(ROOT / rel)
            kb = KnowledgeBase.open(args.laws_kb, create=False)
            info = {"chunks": kb.chunk_count()}
            build_s = 0.0
            judge = EvidenceJudge(ds, kb_chunks(kb))
        else:
            ds = load_dataset(DATA / rel, split=split)
            if key == "squad-tune":
                ds = untested(ds)
            root = args.workdir / f"{key}-{int(time.time())}"
            config = KBConfig.load(args.config) if args.config else KBConfig()
            kb, aliases, info = ingest_corpus(ds, root, config)
            t0 = time.perf_counter()
            kb.build(names=parts)
            build_s = time.perf_counter() - t0
            judge = PassageJudge(ds, aliases)
        queries = list(ds.queries.values())
        lists = {m: kb.search_many(queries, args.depth, m) for m in parts}
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
    never_loses(results, (args.worst_over or args.datasets).split(","))
    return 0


def untested(ds: Dataset) -> Dataset:
    """SQuAD dev without the questions of the test runs (``zhiku eval --limit 3000``), 3,000 of the rest."""
    asked = set(ds.sample(SQUAD_TEST_LIMIT, 0).queries)
    rest = [q for q in ds.queries if q not in asked]
    keep = set(random.Random(1).sample(sorted(rest), SQUAD_TEST_LIMIT))
    return replace(
        ds,
        queries={q: t for q, t in ds.queries.items() if q in keep},
        qrels={q: r for q, r in ds.qrels.items() if q in keep},
        answers={q: a for q, a in ds.answers.items() if q in keep},
    )


def never_loses(results: dict[str, Any], keys: list[str]) -> None:
    """The configuration whose worst margin over its best single part, across the datasets, is largest.

    The goal is a default that never loses to its best part on any dataset, so configurations are
    ranked by their worst case, not by their average.
    """
    margins: dict[str, list[float]] = {}
    for key in keys:
        rows = results[key]["rows"]
        best_part = max(r["mrr@10"] for r in rows if "weights" not in r)
        for r in rows:
            if "weights" in r:
                margins.setdefault(r["config"], []).append(r["mrr@10"] - best_part)
    ranked = sorted(margins.items(), key=lambda kv: -min(kv[1]))
    print(f"== worst margin over the best single part, across {', '.join(keys)}:", file=sys.stderr)
    for config, ms in ranked[:8]:
        cells = " ".join(f"{m:+.3f}" for m in ms)
        print(f"  {config:<42} worst {min(ms):+.3f}  ({cells})", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
