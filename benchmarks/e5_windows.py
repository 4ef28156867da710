"""e5 on texts longer than its 512-token window: windows vs truncation, measured on CMRC 2018 dev.

    .venv/bin/python benchmarks/e5_windows.py [--data ../shared/data]

Only paragraphs longer than the window can differ between the two settings, so the collection is
every CMRC 2018 dev paragraph over 512 tokens (each a document), and each of their questions must
find its own paragraph (hit@1, hit@5, MRR@10). "tail" questions are those whose answer starts after
the point where truncation cuts the paragraph: the text truncation never sees.
Settings: ``long_text="window"`` (zhiku's default: the engine's token-weighted mean of 510-token
windows) and ``long_text="truncate"`` (the first window only). Queries are embedded once.
Writes benchmarks/results/e5_windows.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, commit, machine  # noqa: E402

from zhiku.embed.e5 import E5Embedder  # noqa: E402
from zhiku.embed.e5_engine import MODEL_MAX_TOKENS, load_engine, windows  # noqa: E402


def scores(q: np.ndarray, d: np.ndarray, gold: np.ndarray, subset: np.ndarray) -> dict[str, Any]:
    sims = q @ d.T
    rank = (sims > sims[np.arange(len(gold)), gold][:, None]).sum(axis=1)  # 0 = first
    rr = np.where(rank < 10, 1.0 / (rank + 1), 0.0)

    def agg(mask: np.ndarray) -> dict[str, float]:
        return {
            "questions": int(mask.sum()),
            "hit@1": round(float((rank[mask] == 0).mean()), 4),
            "hit@5": round(float((rank[mask] < 5).mean()), 4),
            "mrr@10": round(float(rr[mask].mean()), 4),
        }

    return {"all": agg(np.ones(len(gold), bool)), "tail": agg(subset)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA if DATA.exists() else Path("/work/shared/data"))
    ap.add_argument("--settings", default="window,truncate", help="comma-separated long_text settings")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU)")
    ap.add_argument("--out", type=Path, default=RESULTS / "e5_windows.json")
    ap.add_argument("--limit", type=int, default=0, help="only the first N long paragraphs (a smoke run)")
    args = ap.parse_args()
    raw = json.loads((args.data / "cmrc2018" / "cmrc2018_dev.json").read_text(encoding="utf-8"))
    engine = load_engine()
    count = lambda s: int(engine.token_count(s, False))  # noqa: E731
    docs: list[str] = []
    questions: list[str] = []
    gold: list[int] = []
    tail: list[bool] = []
    paragraphs = 0
    for art in raw["data"]:
        for p in art["paragraphs"]:
            paragraphs += 1
            if count(p["context"]) <= MODEL_MAX_TOKENS or (args.limit and len(docs) >= args.limit):
                continue
            cut = len(windows(count, p["context"], MODEL_MAX_TOKENS)[0])
            for qa in p["qas"]:
                questions.append(qa["question"])
                gold.append(len(docs))
                tail.append(min(a["answer_start"] for a in qa["answers"]) >= cut)
            docs.append(p["context"])
    g, tails = np.array(gold), np.array(tail)
    t0 = time.time()
    q = E5Embedder().embed_queries(questions)
    seconds = {"queries": round(time.time() - t0, 1)}
    settings = {}
    for long_text in args.settings.split(","):
        t0 = time.time()
        d = E5Embedder(long_text=long_text, workers=args.workers).embed(docs)  # type: ignore[arg-type]
        seconds[long_text] = round(time.time() - t0, 1)
        settings[long_text] = scores(q, d, g, tails)
        print(long_text, json.dumps(settings[long_text]), flush=True)
    tokens = [count(d) for d in docs]
    result = {
        "dataset": "CMRC 2018 dev: every paragraph over 512 tokens is a document; its questions must find it",
        "paragraphs_in_dev": paragraphs,
        "documents": len(docs),
        "doc_tokens": {"median": float(np.median(tokens)), "max": int(max(tokens))},
        "questions": len(questions),
        "tail means": "questions whose answer starts after truncation's cut (text only windows see)",
        "settings": settings,
        "seconds": seconds,
        "machine": machine(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "commit": commit(),
    }
    if args.limit:
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
