"""A query-side adapter: numpy weights applied to a base embedder's query vectors.

``linear``: q + q·W + b (W starts at zero, so an untrained adapter is the identity);
``residual``: q + relu(q·W1 + b1)·W2 + b2 (a two-layer network on a skip connection, W2 at zero).
Saved as ``adapter.json`` plus one ``.npy`` per weight (no pickle: loaded with allow_pickle=False).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from zhiku.errors import IndexError_

AdapterKind = Literal["linear", "residual"]
WEIGHTS: dict[str, tuple[str, ...]] = {"linear": ("W", "b"), "residual": ("W1", "b1", "W2", "b2")}


@dataclass
class Adapter:
    kind: AdapterKind
    dim: int
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def identity(cls, kind: AdapterKind, dim: int, hidden: int = 256, seed: int = 0) -> Adapter:
        rng = np.random.default_rng(seed)
        if kind == "linear":
            w = {"W": np.zeros((dim, dim), np.float32), "b": np.zeros(dim, np.float32)}
        else:
            w = {
                "W1": (rng.standard_normal((dim, hidden)) / np.sqrt(dim)).astype(np.float32),
                "b1": np.zeros(hidden, np.float32),
                "W2": np.zeros((hidden, dim), np.float32),
                "b2": np.zeros(dim, np.float32),
            }
        return cls(kind, dim, w)

    def apply(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, np.float32)
        w = self.weights
        if self.kind == "linear":
            out = q + q @ w["W"] + w["b"]
        else:
            out = q + np.maximum(q @ w["W1"] + w["b1"], 0.0) @ w["W2"] + w["b2"]
        # A zero query (no known word) stays zero: it has no direction, the bias must not give it one.
        out[~q.any(axis=1)] = 0.0
        return out.astype(np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, arr in self.weights.items():
            np.save(folder / f"{name}.npy", arr.astype(np.float32), allow_pickle=False)
        (folder / "adapter.json").write_text(
            json.dumps({"kind": self.kind, "dim": self.dim}), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path) -> Adapter:
        try:
            meta = json.loads((folder / "adapter.json").read_text(encoding="utf-8"))
            kind = meta["kind"]
            weights = {n: np.load(folder / f"{n}.npy", allow_pickle=False) for n in WEIGHTS[kind]}
        except (OSError, ValueError, KeyError) as e:
            raise IndexError_(
                f"no usable query adapter in {folder} ({e})",
                "Train it with `zhiku tune adapter --kb K --base METHOD`",
            ) from e
        return cls(kind, int(meta["dim"]), weights)
