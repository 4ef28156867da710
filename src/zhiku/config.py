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


class IngestConfig(_Frozen):
    max_file_mb: float = Field(50.0, gt=0, description="files larger than this are refused")
    workers: int = Field(0, ge=0, description="tokenising processes; 0 = one per core for large runs")


class MethodConfig(_Frozen):
    """One named retrieval method: its kind (from the method registry) and that kind's options."""

    kind: str
    enabled: bool | Literal["auto"] = "auto"
    options: dict[str, Any] = Field(default_factory=dict)


class GeneratorConfig(_Frozen):
    kind: str = "extractive"
    options: dict[str, Any] = Field(default_factory=dict)


def default_methods() -> dict[str, MethodConfig]:
    return {
        "bm25": MethodConfig(kind="bm25"),
        "dense": MethodConfig(kind="dense"),
        "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "dense"]}),
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
    route: dict[str, Any] | None = Field(
        None, description="what `zhiku tune route` chose as default, and its evidence (written by zhiku)"
    )

    @classmethod
    def load(cls, path: Path) -> KBConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(
                f"{path} is not valid TOML: {e}", "Fix the file or delete it to use the defaults"
            ) from e
        return validated(cls, data, f"{path}: ", "Fix that setting in zhiku.toml")

    def save(self, path: Path) -> None:
        import tomli_w

        from zhiku.store.files import atomic_write_text

        data = self.model_dump(mode="json", exclude_none=True)
        atomic_write_text(path, tomli_w.dumps(data))

    def updated(self, **changes: Any) -> KBConfig:
        return self.model_validate({**self.model_dump(), **changes})


def default_home() -> Path:
    """``ZHIKU_HOME`` or the user's data directory; resolved when called, never at import."""
    env = os.environ.get("ZHIKU_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("zhiku", appauthor=False))
