"""``cross-encoder``: a sentence-transformers ``CrossEncoder`` from a local folder, on the CPU.

For a model the user downloaded once (bge-reranker-base, bge-reranker-v2-m3, a fine-tuned one)::

    [rerank]
    kind = "cross-encoder"
    options = { model = "/models/bge-reranker-v2-m3", max_length = 512 }

Hugging Face offline mode is forced before the library loads and the model is never looked up on a
hub, so a missing folder is a one-line error here instead of a download attempt. torch and
sentence-transformers are imported on first use, not when the KB opens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from zhiku.errors import NotFoundError
from zhiku.huggingface import offline_and_quiet
from zhiku.retrieve.rerank.base import Reranker, RerankOptions, rerankers


class CrossEncoderOptions(RerankOptions):
    model: str = Field("", description="a local folder holding a sentence-transformers CrossEncoder")
    max_length: int = Field(
        512, ge=8, description="tokens per (query, passage) pair, capped at the model's window; longer is cut"
    )
    batch_size: int = Field(32, ge=1, description="pairs per forward pass")
    threads: int | None = Field(
        None,
        ge=1,
        description="torch CPU threads (process-wide); 1 is several times faster on a busy machine",
    )


class CrossEncoderReranker(Reranker):
    name = "cross-encoder"
    Options = CrossEncoderOptions
    spec_field: ClassVar[str | None] = "model"

    def __init__(self, options: CrossEncoderOptions) -> None:
        self.options = options
        self.path = _model_folder(options.model)
        self.model_id = options.model
        self.batch_size = options.batch_size
        # A max_length beyond the model's position table crashes inside torch on the first long
        # pair; cap it at the model's window instead.
        window = _model_window(self.path)
        self.max_length = min(options.max_length, window) if window else options.max_length
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            offline_and_quiet("the cross-encoder reranker")
            from sentence_transformers import CrossEncoder

            if self.options.threads:
                import torch

                # torch's thread pool is per process: this also applies to a dense model loaded here.
                torch.set_num_threads(self.options.threads)
            self._model = CrossEncoder(
                str(self.path), device="cpu", local_files_only=True, max_length=self.max_length
            )
        return self._model

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        out = self._load().predict(
            [(query, p) for p in passages],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(x) for x in out.reshape(len(passages), -1)[:, -1]]


def _model_folder(model: str) -> Path:
    hint = (
        "Download a reranker once (e.g. huggingface-cli download BAAI/bge-reranker-base --local-dir DIR) "
        "and set [rerank.options] model = 'DIR', or use --rerank cross-encoder:DIR"
    )
    if not model:
        raise NotFoundError("the cross-encoder reranker needs a local model folder", hint)
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        what = "has no config.json" if path.is_dir() else "not found"
        raise NotFoundError(f"cross-encoder model folder {what}: {model}", hint)
    return path


def _model_window(path: Path) -> int | None:
    """Tokens a pair may have: the position table's size (RoBERTa-family tables carry 2 more)."""
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    size = cfg.get("max_position_embeddings")
    if not isinstance(size, int) or size <= 0:
        return None
    return size - 2 if str(cfg.get("model_type", "")).endswith("roberta") else size


rerankers.add("cross-encoder", CrossEncoderReranker)
