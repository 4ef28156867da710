"""e5 on texts longer than its window: truncation vs windows, measured on CMRC 2018 dev.

    .venv/bin/python benchmarks/e5_windows.py [--data ../shared/data] [--questions 0]

Each of the 848 Wikipedia paragraphs is a document; each question must find its own paragraph
(hit@1, hit@5, MRR@10), over all questions and over those whose paragraph is longer than the window.
Settings: the engine's own 512-token windows (zhiku's default), the first 512 tokens only, and the
same two at 256 tokens. The 256-token pieces are embedded once and combined as ``zhiku.embed.e5``
does (token-weighted mean, then L2); the script checks that shortcut against the embedder itself.
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

from zhiku.embed.e5 import E5Embedder, load_engine, windows  # noqa: E402


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

    return {"all": agg(np.ones(len(gold), bool)), "long": agg(subset)}


def at_256(docs: list[str], tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """256-token pieces embedded once; windows = their token-weighted mean, truncation = the first."""
    t0 = time.time()
    engine = load_engine()
    e5 = E5Embedder()
    count = lambda s: int(engine.token_count(s, False))  # noqa: E731
    pieces, owner = [], []
    for i, d in enumerate(docs):
        parts = windows(count, d, 256)
        pieces += parts
        owner += [i] * len(parts)
    pv = e5.embed(pieces)
    w = np.array([count(p) for p in pieces], np.float32)
    own = np.array(owner)
    d256 = np.zeros((len(docs), pv.shape[1]), np.float32)
    np.add.at(d256, own, pv * w[:, None])
    d256 /= np.linalg.norm(d256, axis=1, keepdims=True)
    first = np.r_[0, np.flatnonzero(np.diff(own)) + 1]
    dtrunc256 = pv[first]
    # The shortcut above must equal what the embedder computes for these settings.
    check = [int(i) for i in np.flatnonzero(tokens > 256)[:4]]
    for lt, mine in (("window", d256), ("truncate", dtrunc256)):
        ref = E5Embedder(max_seq_length=256, long_text=lt, workers=1).embed([docs[i] for i in check])
        np.testing.assert_allclose(ref, mine[check], atol=1e-5)

    return d256, dtrunc256, round(time.time() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA if DATA.exists() else Path("/work/shared/data"))
    ap.add_argument(
        "--with-256", action="store_true", help="also measure 256-token windows (doubles the cost)"
    )
    ap.add_argument(
        "--paragraphs", type=int, default=0, help="only the first N paragraphs (a smoke run); 0: all"
    )
    args = ap.parse_args()
    raw = json.loads((args.data / "cmrc2018" / "cmrc2018_dev.json").read_text(encoding="utf-8"))
    docs: list[str] = []
    questions: list[str] = []
    gold: list[int] = []
    for art in raw["data"][: args.paragraphs or None]:
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                questions.append(qa["question"])
                gold.append(len(docs))
            docs.append(p["context"])
    g = np.array(gold)
    engine = load_engine()
    tokens = np.array([engine.token_count(d, False) for d in docs])
    t0 = time.time()
    e5 = E5Embedder()
    q = e5.embed_queries(questions)
    t_q = time.time() - t0

    t0 = time.time()
    d512 = e5.embed(docs)  # the engine's own windows
    long512 = np.flatnonzero(tokens > 512)
    dtrunc512 = d512.copy()
    dtrunc512[long512] = E5Embedder(long_text="truncate").embed([docs[i] for i in long512])
    t_512 = time.time() - t0

    settings = {
        "window-512 (default)": scores(q, d512, g, tokens[g] > 512),
        "truncate-512": scores(q, dtrunc512, g, tokens[g] > 512),
    }
    seconds = {"queries": round(t_q, 1), "docs_512_both": round(t_512, 1)}
    if args.with_256:
        d256, dtrunc256, seconds["docs_256_both"] = at_256(docs, tokens)
        settings["window-256"] = scores(q, d256, g, tokens[g] > 256)
        settings["truncate-256"] = scores(q, dtrunc256, g, tokens[g] > 256)
    result = {
        "dataset": "CMRC 2018 dev: 848 paragraphs as documents, each question's own paragraph is gold",
        "documents": len(docs),
        "questions": len(questions),
        "doc_tokens": {
            "median": float(np.median(tokens)),
            "p90": float(np.percentile(tokens, 90)),
            "max": int(tokens.max()),
            "over_512": int((tokens > 512).sum()),
            "over_256": int((tokens > 256).sum()),
        },
        "settings": settings,
        "long means": "questions whose paragraph is longer than the setting's window (512 or 256 tokens)",
        "seconds": seconds,
        "machine": machine(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "commit": commit(),
    }
    if args.paragraphs:
        print(json.dumps(result["settings"], indent=1))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "e5_windows.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
