"""Keeping a KB's derived indexes in step with its catalog: freshness, building, retraining, loading.

An index is fresh when its manifest records the catalog's fingerprint, the method's settings and the
tokenizer the KB uses now; a stale one is rebuilt before use, never silently searched. The manifest
is written last (into a staged folder moved into place), so a manifest vouches for complete files.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zhiku.errors import IndexError_, LockedError, ZhikuError
from zhiku.progress import Progress
from zhiku.retrieve.base import Method
from zhiku.store.files import atomic_write_json, staged_dir
from zhiku.text.token_rows import JoinedTokens
from zhiku.types import Corpus
from zhiku.version import __version__

if TYPE_CHECKING:
    from zhiku.kb.core import Facade
    from zhiku.kb.methods import MethodSet

VERSION = __version__

#: what building reports: one phase per method (the CLI draws a bar; the library prints nothing)
BuildProgress = Progress


@dataclass
class BuildReport:
    built: list[tuple[str, float]] = field(default_factory=list)  # (method, seconds)
    fresh: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (method, why)


class IndexKeeper:
    """The indexes of one KB under ``indexes/<method>/``, and which of them are loaded."""

    def __init__(self, kb: Facade, methods: MethodSet) -> None:
        self.kb = kb
        self.methods = methods
        self._loaded: dict[str, str] = {}  # method -> fingerprint of the index it has loaded

    # -- reading ----------------------------------------------------------------------------------
    def ready(self, name: str) -> Method:
        kb = self.kb
        m = self.methods.get(name)
        if not m.indexed:
            return m
        name = m.name
        if kb.catalog.chunk_count() == 0:
            raise IndexError_(
                f"knowledge base {kb.name!r} is empty: there is nothing to search",
                f"Add documents first: `zhiku ingest PATH --kb {kb.name}`, or upload them on the web page",
            )
        fp = kb.catalog.fingerprint()
        if self._loaded.get(name) == fp:
            return m
        manifest = self.methods.manifest(name)
        if not self.methods.is_fresh(name, manifest):
            if manifest is None:
                wanted, why = self.methods.wanted(name)
                if not wanted:
                    # A language reason carries its own advice after "; " (build anyway, or another
                    # model): give it as the hint instead of repeating the build command.
                    situation, _, advice = why.partition("; ")
                    hint = (
                        advice[:1].upper() + advice[1:]
                        if advice
                        else f"Build it with `zhiku build --method {name}`"
                    )
                    raise IndexError_(f"method {name!r} is not built: {situation}", hint)
            # Stale (an interrupted ingest, changed settings): derived data, so rebuild it now
            # rather than answer from an index that disagrees with the catalog.
            try:
                with kb.layout.writer_lock():
                    self.build_one(name, None)
            except LockedError:
                # Another writer is changing the KB and rebuilds this index when it is done: until
                # then answer from the last complete index (the old state; hits on chunks removed
                # since are dropped by attach) instead of failing every search during an ingest.
                if manifest is None:
                    raise
                if name not in self._loaded:
                    m.load(kb.layout.index_dir(name))
                    self._loaded[name] = str(manifest.get("fingerprint"))
                return m
        self._load_or_rebuild(name, m)
        self._loaded[name] = fp
        return m

    def _load_or_rebuild(self, name: str, m: Method) -> None:
        """Load an index whose manifest says it is fresh; rebuild it if its files cannot be read.

        The manifest is written last, so files damaged under an intact manifest come from outside
        (a disk error, a copy cut short): derived data, rebuilt from the catalog like a stale index.
        """
        layout = self.kb.layout
        try:
            m.load(layout.index_dir(name))
            return
        except ZhikuError:
            raise
        except Exception as e:  # numpy, orjson, faiss, gensim: each fails its own way on damaged files
            damaged = e
        try:
            with layout.writer_lock():
                self.build_one(name, None)
        except LockedError as e:
            raise IndexError_(
                f"the index of method {name!r} is damaged ({damaged}) and the knowledge base is being "
                "changed by another process",
                "Try again when it is done: the index is then rebuilt",
            ) from e
        m.load(layout.index_dir(name))

    # -- building ---------------------------------------------------------------------------------
    def build(self, names: Sequence[str] | None, force: bool, progress: BuildProgress | None) -> BuildReport:
        kb = self.kb
        wanted: list[str] = []
        for n in names or ():
            wanted += [p for p in self.methods.indexed_parts(n) if p not in wanted]
        if names and kb.catalog.chunk_count() == 0:
            # An index of nothing is of no use, and libraries warn about empty means while building it.
            raise IndexError_(
                f"knowledge base {kb.name!r} is empty: there is nothing to build an index of",
                f"Add documents first: `zhiku ingest PATH --kb {kb.name}`",
            )
        with kb.layout.writer_lock():
            kb.recover()
            if wanted:
                # An explicit build is a decision: record it so later ingests keep the index current.
                changed = {
                    n: self.methods.config(n).model_copy(update={"enabled": True})
                    for n in wanted
                    if self.methods.config(n).enabled is not True
                }
                if changed:
                    kb.config = kb.config.updated(methods={**kb.config.methods, **changed})
                    kb.config.save(kb.layout.config)
            return self.build_locked(wanted or None, force, progress)

    def retrain(self, names: Sequence[str] | None, progress: BuildProgress | None) -> BuildReport:
        candidates: list[str] = []
        for n in names or [n for n in self.methods.names() if self.methods.status(n).built]:
            candidates += [p for p in self.methods.indexed_parts(n) if p not in candidates]
        chosen = [n for n in candidates if self.methods.get(n).trainable]
        for n in chosen:
            self.methods.get(n).request_retrain()
        return self.build(chosen, True, progress) if chosen else BuildReport()

    def build_locked(
        self, names: Sequence[str] | None, force: bool, progress: BuildProgress | None
    ) -> BuildReport:
        """Build what is stale (or ``names``, or everything if ``force``); the writer lock is held."""
        kb = self.kb
        report = BuildReport()
        if kb.catalog.chunk_count() == 0:  # an index of nothing: skip (bm25s warns on empty means)
            indexed = [n for n in names or self.methods.names() if self.methods.get(n).indexed]
            report.skipped = [(n, "the knowledge base is empty") for n in indexed]
            return report
        for name in names or self.methods.names():
            m = self.methods.get(name)
            if not m.indexed:
                continue
            if not names:
                wanted, why = self.methods.wanted(name)
                if not wanted:
                    report.skipped.append((name, why))
                    continue
            if not force and self.methods.is_fresh(name, self.methods.manifest(name)):
                report.fresh.append(name)
                continue
            report.built.append((name, self.build_one(name, progress)))
        return report

    def build_one(self, name: str, progress: BuildProgress | None) -> float:
        kb = self.kb
        m = self.methods.get(name)
        t0 = time.perf_counter()
        corpus = self.corpus()
        final = kb.layout.index_dir(name)
        if progress:
            progress.start(name, len(corpus))
        try:
            with staged_dir(final) as tmp:
                extra = m.build(corpus, tmp, progress.advance if progress else None)
                seconds = time.perf_counter() - t0
                atomic_write_json(
                    tmp / "manifest.json",
                    {
                        "method": name,
                        "kind": m.kind,
                        "settings": m.describe(),
                        "tokenizer": kb.tokenizer.describe(),
                        "fingerprint": corpus.fingerprint,
                        "chunks": len(corpus),
                        "language": corpus.language,
                        "built_at": time.time(),
                        "seconds": round(seconds, 3),
                        "zhiku_version": VERSION,
                        "details": extra,
                    },
                )
        finally:
            if progress:
                progress.close()
        self._loaded.pop(name, None)
        return seconds

    def corpus(self) -> Corpus:
        catalog = self.kb.catalog
        ids, texts, hashes, tokens, contexts = [], [], [], [], []
        for cid, text, th, toks, ctx in catalog.iter_corpus():
            ids.append(cid)
            texts.append(text)
            hashes.append(th)
            tokens.append(toks)  # split on use (JoinedTokens): 150 str objects a chunk was most of the RAM
            contexts.append(ctx)
        fingerprint, language = catalog.fingerprint(), self.methods.language()
        return Corpus(ids, texts, contexts, hashes, JoinedTokens(tokens), fingerprint, language)
