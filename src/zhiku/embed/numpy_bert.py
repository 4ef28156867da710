"""Query embeddings for small BERT sentence models in NumPy: no torch, no sentence-transformers.

A CLI question with a dense method used to pay for importing sentence-transformers and torch
(≈ 12 s on a quiet laptop, far more under load) to embed one short query, while the forward pass
itself takes milliseconds. For the models this covers (a BERT encoder followed by mean pooling and,
optionally, L2 normalisation, as in all-MiniLM-L6-v2: checked in ``modules.json``), the encoder
runs here on the weights from ``model.safetensors``, tokenised by the ``tokenizers`` library (the
Rust WordPiece that transformers itself uses, from ``tokenizer.json``). Anything else (Dense
layers, CLS pooling, another architecture) returns ``None`` and the caller uses
sentence-transformers as before. ``tests/integration/test_numpy_bert.py`` checks the vectors
against sentence-transformers'.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

_SUPPORTED_MODULES = (
    ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"],
    [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ],
)


class NumpyBert:
    """A BERT encoder with mean pooling: ``encode(texts)`` → float32 vectors (normalised if the model
    normalises)."""

    def __init__(self, path: Path, max_seq_length: int | None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.w = {
            k.removeprefix("bert."): v.astype(np.float32, copy=False)
            for k, v in load_file(str(path / "model.safetensors")).items()
        }
        modules = [m["type"] for m in json.loads((path / "modules.json").read_text(encoding="utf-8"))]
        self.normalize = modules[-1].endswith("Normalize")
        limit = max_seq_length or _st_max_length(path) or int(config.get("max_position_embeddings", 512))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(
            max_length=min(limit, int(config.get("max_position_embeddings", 512)))
        )
        self.tokenizer.no_padding()

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]).astype(np.float32)

    def _one(self, text: str) -> np.ndarray:
        w = self.w
        enc = self.tokenizer.encode(text)
        ids = np.asarray(enc.ids)
        types = np.asarray(enc.type_ids)
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        d = x.shape[1]
        h = self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = self._dense(x, p + "attention.self.query").reshape(n, h, d // h).transpose(1, 0, 2)
            k = self._dense(x, p + "attention.self.key").reshape(n, h, d // h).transpose(1, 0, 2)
            v = self._dense(x, p + "attention.self.value").reshape(n, h, d // h).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(d // h)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, d)
            x = self._norm(
                self._dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
            )
            inner = _gelu(self._dense(x, p + "intermediate.dense"))
            x = self._norm(self._dense(inner, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = x.mean(axis=0)  # one text, no padding: every token counts
        if self.normalize:
            pooled = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return pooled

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)); erf by Abramowitz & Stegun 7.1.26 (absolute
    error under 1.5e-7, below float32's resolution of these activations)."""
    z = x / np.float32(np.sqrt(2.0))
    t = 1.0 / (1.0 + 0.3275911 * np.abs(z))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(z) * (1.0 - poly * np.exp(-z * z))
    return (x * 0.5 * (1.0 + erf)).astype(np.float32)


def _st_max_length(path: Path) -> int | None:
    f = path / "sentence_bert_config.json"
    if f.exists():
        value = json.loads(f.read_text(encoding="utf-8")).get("max_seq_length")
        return int(value) if value else None
    return None


def supported(path: Path) -> bool:
    """A BERT encoder + mean pooling (+ normalisation) with safetensors weights and a tokenizer.json."""
    try:
        modules = [m["type"] for m in json.loads((path / "modules.json").read_text(encoding="utf-8"))]
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        pooling.get(k)
        for k in (
            "pooling_mode_cls_token",
            "pooling_mode_max_tokens",
            "pooling_mode_mean_sqrt_len_tokens",
            "pooling_mode_weightedmean_tokens",
            "pooling_mode_lasttoken",
        )
    )
    return (
        modules in [list(m) for m in _SUPPORTED_MODULES]
        and bool(mean_only)
        and config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and (path / "model.safetensors").exists()
        and (path / "tokenizer.json").exists()
    )


@lru_cache(maxsize=4)
def numpy_encoder(path: Path, max_seq_length: int | None) -> Any:
    """The NumPy encoder for ``path``, or None where it does not apply (or cannot load)."""
    if not supported(path):
        return None
    try:
        return NumpyBert(path, max_seq_length)
    except (ImportError, OSError, KeyError, ValueError):
        return None
