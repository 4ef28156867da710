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

from zhiku.errors import IndexError_, ZhikuError
from zhiku.kb.build_progress import RecordingProgress, progress_file
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
    def ready(self, name: str, build: bool = False) -> Method:
        """The method, loaded. A read never builds (``build`` is for commands that say they build:
        ``zhiku eval``, ``zhiku tune``): a stale index answers from its last complete build (a
        note says so), a missing one is an IndexError_ that says why and how far its build is."""
        kb = self.kb
        m = self.methods.get(name)
        if not m.indexed:
            return m
        name = m.name
        fp = kb.catalog.fingerprint()
        # The fingerprint holds the chunk count ("count:sum"): read per search, where COUNT(*) over
        # the chunks table cost milliseconds at a million chunks (benchmarks/million.py).
        if fp.startswith("0:") and kb.catalog.chunk_count() == 0:
            raise IndexError_(
                f"knowledge base {kb.name!r} is empty: there is nothing to search",
                f"Add documents first: `zhiku ingest PATH --kb {kb.name}`, or upload them on the web page",
            )
        if self.methods.config(name).enabled is False and not build:
            raise IndexError_(
                f"method {name!r} is disabled in zhiku.toml",
                f"Use another method, or build it with `zhiku build --method {name} --kb {kb.name}`",
            )
        if self._loaded.get(name) == fp:
            return m
        manifest = self.methods.manifest(name)
        if self.methods.is_fresh(name, manifest):
            self._load(name, m, build)
            self._loaded[name] = fp
            return m
        if build:
            with kb.layout.writer_lock():
                self.build_one(name, None)
            self._load(name, m, build)
            self._loaded[name] = fp
            return m
        if manifest is None or not self.methods.same_settings(name, manifest):
            why = self.methods.not_built_reason(name) if manifest is None else "built with other settings"
            situation, _, advice = why.partition("; ")
            hint = advice[:1].upper() + advice[1:] if advice else f"`zhiku build --kb {kb.name}` builds it"
            state = self.methods.build_state(name)
            if state is not None and state.running:
                hint = f"It answers when that build ends; `zhiku status --kb {kb.name}` shows how far it is"
            raise IndexError_(f"method {name!r} is not built: {situation}", hint)
        # Stale: the catalog changed since (an ingest is building it now, or was interrupted).
        # Derived data, so answer from the last complete index (hits on chunks removed since are
        # dropped by attach) and say so, rather than start an hour of embedding inside a read.
        stamp = f"stale:{manifest.get('fingerprint')}:{manifest.get('built_at')}"
        if self._loaded.get(name) != stamp:
            self._load(name, m, build)
            self._loaded[name] = stamp
        kb.note(
            f"{name} answers from its last complete build ({manifest.get('chunks', 0):,} chunks): "
            f"{self.methods.not_built_reason(name, stale=True)}"
        )
        return m

    def _load(self, name: str, m: Method, build: bool) -> None:
        """Load an index whose manifest vouches for it. The manifest is written last, so files that
        cannot be read under it come from outside (a disk error, a copy cut short) or from a swap
        in progress (read once more); a read never rebuilds them."""
        layout = self.kb.layout
        for attempt in range(2):
            try:
                # The folder is a link to one published version: resolved once, every file of the
                # load comes from that version even if a writer publishes the next one meanwhile
                # (reading by the link's name mixed two versions: bm25s's matrix of one with the
                # document count of the other, an IndexError in a search the soak found).
                m.load(layout.index_dir(name).resolve())
                return
            except ZhikuError:
                raise
            except Exception as e:  # numpy, orjson, faiss, gensim: each fails its own way
                damaged = e
                if attempt == 0:
                    time.sleep(0.2)
        if not build:
            raise IndexError_(
                f"the index of method {name!r} cannot be read ({damaged})",
                f"Rebuild it with `zhiku build --method {name} --force --kb {self.kb.name}`",
            )
        with layout.writer_lock():
            self.build_one(name, None)
        m.load(layout.index_dir(name))

    # -- building ---------------------------------------------------------------------------------
    def build(self, names: Sequence[str] | None, force: bool, progress: BuildProgress | None) -> BuildReport:
        kb = self.kb
        wanted: list[str] = []
        for n in names or ():
            wanted += [p for p in self._named_parts(n) if p not in wanted]
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

    def choose(self, names: Sequence[str]) -> None:
        """``zhiku ingest --methods bm25,dense``: the indexed methods these need are built from now
        on, every other indexed method is off (recorded in zhiku.toml; `zhiku build --method X`
        turns one on again). Called under the writer lock."""
        kb = self.kb
        named = [self.methods.get(n).name for n in names]  # unknown names: the list of known ones
        direct = [n for n in named if self.methods.get(n).indexed]
        via: list[str] = []
        for n in named:
            via += [p for p in self._all_indexed(n) if p not in direct and p not in via]
        changed = {}
        for n in dict.fromkeys([*self.methods.names(), *direct]):
            if not self.methods.get(n).indexed:
                continue
            cfg = self.methods.config(n)
            # Named: built. Part of a named fusion: built where it applies (auto). Others: off.
            if n in direct:
                enabled: bool | str = True
            elif n in via:
                enabled = "auto" if cfg.enabled is False else cfg.enabled
            else:
                enabled = False
            if cfg.enabled != enabled:
                changed[n] = cfg.model_copy(update={"enabled": enabled})
        if changed:
            kb.config = kb.config.updated(methods={**kb.config.methods, **changed})
            kb.config.save(kb.layout.config)

    def _named_parts(self, name: str) -> list[str]:
        """What `zhiku build --method NAME` builds: the indexed methods ``name`` uses here, and the
        ones zhiku.toml disabled among them (naming it is the decision to turn them on)."""
        m = self.methods.get(name)
        if m.indexed:
            return [m.name]
        used = self.methods.parts_in_use(name)
        out: list[str] = []
        for p in [
            *used,
            *(p for p in m.parts() if p not in used and self.methods.config(p).enabled is False),
        ]:
            out += [q for q in self._named_parts(p) if q not in out]
        return out

    def _all_indexed(self, name: str) -> list[str]:
        m = self.methods.get(name)
        if m.indexed:
            return [m.name]
        out: list[str] = []
        for p in m.parts():
            out += [q for q in self._all_indexed(p) if q not in out]
        return out

    def retrain(self, names: Sequence[str] | None, progress: BuildProgress | None) -> BuildReport:
        candidates: list[str] = []
        for n in names or [n for n in self.methods.names() if self.methods.status(n).built]:
            candidates += [p for p in self.methods.indexed_parts(n) if p not in candidates]
        chosen = [n for n in candidates if self.methods.get(n).trainable]
        for n in chosen:
            self.methods.get(n).request_retrain()
        return self.build(chosen, True, progress) if chosen else BuildReport()

    def backlog(self) -> dict[str, int]:
        """Before a write: for each slow method (embeddings), about how many chunks its index lacks
        now: 0 when it is up to date (or the KB is empty), all chunks when it was never built."""
        catalog = self.kb.catalog
        total = catalog.chunk_count()
        out: dict[str, int] = {}
        for name in self.methods.names():
            m = self.methods.get(name)
            if not (m.indexed and m.slow_to_build):
                continue
            man = self.methods.manifest(name)
            if total == 0 or self.methods.is_fresh(name, man):
                out[name] = 0
            elif man is None or not self.methods.same_settings(name, man):
                out[name] = total
            else:
                out[name] = max(1, abs(total - int(man.get("chunks", 0))))
        return out

    def build_locked(
        self,
        names: Sequence[str] | None,
        force: bool,
        progress: BuildProgress | None,
        backlog: dict[str, int] | None = None,
        touched: int = 0,
    ) -> BuildReport:
        """Build what is stale (or ``names``, or everything if ``force``); the writer lock is held.

        ``backlog`` (a write's default build; see ``backlog()``) and ``touched`` (the chunks the
        write added or found unchanged): a slow method whose index lacked more chunks before the
        write than the write covers is skipped with the reason. A delete or a one-file ingest
        after an interrupted run must not pay for the whole run's embedding: `zhiku build` does
        that, or the same ingest run again (which covers it), resuming from the vector cache.
        """
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
            missing = (backlog or {}).get(name, 0)
            if backlog is not None and m.slow_to_build and missing > touched:
                report.skipped.append(
                    (
                        name,
                        f"vectors of ~{missing:,} chunks missing from an earlier run: "
                        f"`zhiku build --kb {kb.name}` adds them",
                    )
                )
                continue
            report.built.append((name, self.build_one(name, progress)))
        return report

    def build_one(self, name: str, progress: BuildProgress | None) -> float:
        kb = self.kb
        m = self.methods.get(name)
        t0 = time.perf_counter()
        corpus = self.corpus()
        final = kb.layout.index_dir(name)
        recorder = RecordingProgress(progress_file(kb.layout.indexes, name), name, progress)
        recorder.start(name, len(corpus))
        try:
            with staged_dir(final) as tmp:
                if m.reports_phases:
                    extra = m.build(corpus, tmp, recorder.advance, phase=recorder.next_phase)
                else:
                    extra = m.build(corpus, tmp, recorder.advance)
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
        except BaseException:
            recorder.stopped()
            raise
        finally:
            recorder.close()
        recorder.finished()
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
