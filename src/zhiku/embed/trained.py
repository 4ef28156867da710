"""Keeping a corpus-trained embedder's model current: reuse it, or train it again.

A trainable embedder's model lives in ``models/<method>/`` with a manifest (training settings, the
corpus fingerprint, vocabulary size, training time, a random model id). A build reuses it when
both the fingerprint and the training settings still match (a changed pooling, metric or index does
not retrain); otherwise it trains again, so a model is never silently older than its corpus. The
index records the model id it was built with, so an index is never searched with another model.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zhiku.embed.base import Embedder
from zhiku.errors import IndexError_
from zhiku.store.files import atomic_write_json, staged_dir
from zhiku.types import Corpus

MODEL_FORMAT = 1


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ensure_model(
    embedder: Embedder,
    corpus: Corpus,
    model_dir: Path,
    *,
    method: str,
    retrain: bool = False,
    passes: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Fit ``embedder`` on ``corpus`` or load its current model; returns (manifest, trained now).

    ``passes``: how many times training reads the corpus, to map its progress onto one bar.
    """
    manifest = read_manifest(model_dir)
    settings = embedder.training_settings()
    if (
        not retrain
        and manifest is not None
        and manifest.get("format") == MODEL_FORMAT
        and manifest.get("fingerprint") == corpus.fingerprint
        and manifest.get("settings") == settings
    ):
        try:
            embedder.load_model(model_dir)
        except (OSError, ValueError, KeyError):
            pass  # unreadable: train a new one
        else:
            embedder.model_id = str(manifest["model_id"])
            if progress:
                progress(len(corpus))
            return manifest, False
    t0 = time.perf_counter()
    embedder.fit(corpus, scaled(progress, len(corpus), passes))
    manifest = {
        "format": MODEL_FORMAT,
        "model_id": embedder.model_id or uuid.uuid4().hex,
        "method": method,
        "embedder": embedder.name,
        "settings": settings,
        "fingerprint": corpus.fingerprint,
        "chunks": len(corpus),
        "vocabulary": embedder.vocabulary_size(),
        "training_seconds": round(time.perf_counter() - t0, 3),
        "trained_at": time.time(),
        "gensim": _gensim_version(),
    }
    with staged_dir(model_dir) as tmp:
        embedder.save_model(tmp)
        atomic_write_json(tmp / "manifest.json", manifest)
    embedder.model_id = str(manifest["model_id"])
    return manifest, True


def load_current(embedder: Embedder, model_dir: Path, model_id: str, method: str) -> dict[str, Any]:
    """Load the model an index was built with (``model_id``), or say how to rebuild."""
    manifest = read_manifest(model_dir)
    try:
        if manifest is None or manifest.get("model_id") != model_id:
            raise KeyError("model_id")
        embedder.load_model(model_dir)
    except (OSError, ValueError, KeyError) as e:
        raise IndexError_(
            f"the {embedder.name} model of method {method!r} is missing, unreadable or was "
            "retrained after its index was built",
            f"Rebuild it: `zhiku build --method {method} --retrain`",
        ) from e
    embedder.model_id = model_id
    return manifest


def scaled(progress: Callable[[int], None] | None, total: int, passes: int) -> Callable[[int], None] | None:
    """Map "sentences read over all passes" onto the build bar's "chunks" total."""
    if progress is None:
        return None
    done = [0, 0]  # sentences read, bar units reported

    def advance(n: int) -> None:
        done[0] += n
        target = min(total, done[0] // max(passes, 1))
        if target > done[1]:
            progress(target - done[1])
            done[1] = target

    return advance


def _gensim_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gensim")
    except PackageNotFoundError:  # metadata missing in odd installs: the manifest just says so
        return "unknown"
