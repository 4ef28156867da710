"""``KnowledgeBase``: the one facade the CLI and the web API call.

It owns the catalog, the KB's settings and its methods, and keeps derived indexes in step with the
catalog: after every change it rebuilds what is stale, and a search never silently uses an index
built from another corpus (the manifest's fingerprint must match the catalog's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhiku.config import KBConfig, MethodConfig, default_home
from zhiku.errors import IndexError_, LockedError, NotFoundError, UsageError
from zhiku.ingest.pipeline import IngestReport, Progress, ingest_paths, ingest_texts
from zhiku.retrieve.base import Corpus, Method, MethodContext, load_builtin_methods, methods
from zhiku.store.catalog import Catalog
from zhiku.store.files import atomic_write_json, staged_dir
from zhiku.store.layout import KBLayout, check_kb_name
from zhiku.text.normalise import language_of
from zhiku.text.tokenize import Tokenizer, load_user_dict, make_tokenizer
from zhiku.types import Answer, DocumentInfo, Hit

VERSION = "0.1.0"


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


@dataclass
class BuildReport:
    built: list[tuple[str, float]] = field(default_factory=list)  # (method, seconds)
    fresh: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (method, why)


class BuildProgress:
    """What building reports: one bar per method (the CLI draws it; the library prints nothing)."""

    def start(self, method: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def close(self) -> None: ...


class KnowledgeBase:
    def __init__(self, layout: KBLayout, config: KBConfig) -> None:
        self.layout = layout
        self.config = config
        self.catalog = Catalog(layout.catalog)
        if config.tokenizer.user_dict:
            load_user_dict(config.tokenizer.user_dict)
        self.tokenizer: Tokenizer = make_tokenizer(**config.tokenizer.model_dump(exclude={"user_dict"}))
        self._methods: dict[str, Method] = {}
        self._loaded: dict[str, str] = {}  # method -> fingerprint of the index it has loaded
        self._language: tuple[str, str] | None = None  # (fingerprint, language)
        load_builtin_methods()

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        name_or_path: str | Path = "default",
        home: Path | None = None,
        create: bool = True,
        config: KBConfig | None = None,
    ) -> KnowledgeBase:
        """Open a KB by name (under ``home``/ZHIKU_HOME) or by folder path; create it if asked."""
        layout = resolve_layout(name_or_path, home)
        if not layout.exists():
            if not create:
                raise NotFoundError(
                    f"no knowledge base {layout.name!r} in {layout.root.parent}",
                    f"Create it with `zhiku ingest PATH --kb {layout.name}`, or see `zhiku kbs`",
                )
            layout.root.mkdir(parents=True, exist_ok=True)
            (config or KBConfig()).save(layout.config)
        elif config is not None:
            config.save(layout.config)
        return cls(layout, KBConfig.load(layout.config))

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def name(self) -> str:
        return self.layout.name

    # -- writing ------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path],
        progress: Progress | None = None,
        prune: bool = True,
        build: bool = True,
        build_progress: BuildProgress | None = None,
    ) -> tuple[IngestReport, BuildReport]:
        with self.layout.writer_lock():
            run = self.catalog.start_run()
            try:
                report = ingest_paths(self.catalog, [Path(p) for p in paths], self.config, progress, prune)
            except BaseException as e:
                self.catalog.finish_run(
                    run, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed", repr(e)
                )
                raise
            self.catalog.finish_run(run, "done", report.summary())
            built = self._build_locked(None, False, build_progress) if build else BuildReport()
        return report, built

    def add_texts(self, records: Iterable[tuple[str, str, str]], build: bool = True) -> IngestReport:
        """Ingest in-memory ``(source, title, text)`` records (evaluation corpora, API uploads)."""
        with self.layout.writer_lock():
            report = ingest_texts(self.catalog, records, self.config)
            if build:
                self._build_locked(None, False, None)
        return report

    def delete(self, ref: str) -> list[DocumentInfo]:
        """Delete one document (by path, id or path suffix) from the catalog and every index."""
        docs = self.find_documents(ref)
        if len(docs) > 1:
            listing = "; ".join(d.source for d in docs[:5])
            raise UsageError(
                f"{ref!r} matches {len(docs)} documents: {listing}", "Give the full path or the id"
            )
        with self.layout.writer_lock():
            self.catalog.delete_documents([d.id for d in docs])
            self._build_locked(None, False, None)
        return docs

    def find_documents(self, ref: str) -> list[DocumentInfo]:
        docs = self.catalog.find_documents(ref)
        if not docs:
            resolved = str(Path(ref).expanduser().resolve())
            docs = self.catalog.find_documents(resolved)
        if not docs:
            raise NotFoundError(f"no document {ref!r} in knowledge base {self.name!r}", "See `zhiku list`")
        return docs

    # -- methods and indexes --------------------------------------------------------------------
    def method_names(self) -> list[str]:
        return list(self.config.methods)

    def _method_config(self, name: str) -> MethodConfig:
        if name not in self.config.methods and name in methods:
            # A registered kind works by its own name with default options (`zhiku build --method
            # w2v-sg`); it is written to zhiku.toml when it is built, not merely when it is named.
            self.config = self.config.updated(methods={**self.config.methods, name: MethodConfig(kind=name)})
        try:
            return self.config.methods[name]
        except KeyError:
            raise NotFoundError(
                f"unknown method {name!r} in knowledge base {self.name!r}",
                f"Choose one of: {', '.join(self.config.methods)}, or a kind: {', '.join(methods.names())}",
            ) from None

    def method(self, name: str) -> Method:
        """The method instance (not necessarily loaded); composites resolve their parts lazily."""
        if name not in self._methods:
            cfg = self._method_config(name)
            ctx = MethodContext(
                tokenizer=self.tokenizer,
                language=self.language,
                resolve=self.ready_method,
                models_dir=self.layout.models / name,
            )
            self._methods[name] = methods.get(cfg.kind)(name, cfg.options, ctx)
        return self._methods[name]

    def language(self) -> str:
        if self.config.language != "auto":
            return self.config.language
        fp = self.catalog.fingerprint()
        if self._language is None or self._language[0] != fp:
            self._language = (fp, language_of(self.catalog.sample_text()))
        return self._language[1]

    def manifest(self, name: str) -> dict[str, Any] | None:
        path = self.layout.index_dir(name) / "manifest.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def _is_fresh(self, name: str, manifest: dict[str, Any] | None) -> bool:
        return bool(
            manifest
            and manifest.get("fingerprint") == self.catalog.fingerprint()
            and manifest.get("settings") == self.method(name).describe()
        )

    def _wanted(self, name: str) -> tuple[bool, str]:
        cfg = self._method_config(name)
        if cfg.enabled is False:
            return False, "disabled in zhiku.toml"
        if cfg.enabled is True:
            return True, ""
        if self.catalog.chunk_count() == 0:
            return False, "the knowledge base is empty"
        return self.method(name).applicable(self.language())

    def ready_method(self, name: str) -> Method:
        """A method ready to search: built, fresh and loaded (rebuilt first if it is stale)."""
        m = self.method(name)
        if not m.indexed:
            return m
        if self.catalog.chunk_count() == 0:
            raise IndexError_(
                f"knowledge base {self.name!r} is empty: there is nothing to search",
                f"Add documents first: `zhiku ingest PATH --kb {self.name}`, or upload them on the web page",
            )
        fp = self.catalog.fingerprint()
        if self._loaded.get(name) == fp:
            return m
        manifest = self.manifest(name)
        if not self._is_fresh(name, manifest):
            if manifest is None:
                wanted, why = self._wanted(name)
                if not wanted:
                    raise IndexError_(
                        f"method {name!r} is not built: {why}", f"Build it with `zhiku build --method {name}`"
                    )
            # Stale (an interrupted ingest, changed settings): derived data, so rebuild it now
            # rather than answer from an index that disagrees with the catalog.
            try:
                with self.layout.writer_lock():
                    self._build_one(name, None)
            except LockedError:
                # Another writer is changing the KB and rebuilds this index when it is done: until
                # then answer from the last complete index (the old state; hits on chunks removed
                # since are dropped by attach) instead of failing every search during an ingest.
                if manifest is None:
                    raise
                if name not in self._loaded:
                    m.load(self.layout.index_dir(name))
                    self._loaded[name] = str(manifest.get("fingerprint"))
                return m
        m.load(self.layout.index_dir(name))
        self._loaded[name] = fp
        return m

    def build(
        self, names: Sequence[str] | None = None, force: bool = False, progress: BuildProgress | None = None
    ) -> BuildReport:
        """Build stale indexes; ``names`` builds those methods even where the default would not."""
        for n in names or ():
            self._method_config(n)
        if names and self.catalog.chunk_count() == 0:
            # An index of nothing is of no use, and libraries warn about empty means while building it.
            raise IndexError_(
                f"knowledge base {self.name!r} is empty: there is nothing to build an index of",
                f"Add documents first: `zhiku ingest PATH --kb {self.name}`",
            )
        with self.layout.writer_lock():
            if names:
                # An explicit build is a decision: record it so later ingests keep the index current.
                changed = {
                    n: self.config.methods[n].model_copy(update={"enabled": True})
                    for n in names
                    if self.method(n).indexed and self.config.methods[n].enabled != True
                }  # noqa: E712
                if changed:
                    self.config = self.config.updated(methods={**self.config.methods, **changed})
                    self.config.save(self.layout.config)
            return self._build_locked(names, force, progress)

    def _build_locked(
        self, names: Sequence[str] | None, force: bool, progress: BuildProgress | None
    ) -> BuildReport:
        report = BuildReport()
        if self.catalog.chunk_count() == 0:  # an index of nothing: skip (bm25s warns on empty means)
            wanted = [n for n in names or self.method_names() if self.method(n).indexed]
            report.skipped = [(n, "the knowledge base is empty") for n in wanted]
            return report
        for name in names or self.method_names():
            m = self.method(name)
            if not m.indexed:
                continue
            if not names:
                wanted, why = self._wanted(name)
                if not wanted:
                    report.skipped.append((name, why))
                    continue
            if not force and self._is_fresh(name, self.manifest(name)):
                report.fresh.append(name)
                continue
            report.built.append((name, self._build_one(name, progress)))
        return report

    def _build_one(self, name: str, progress: BuildProgress | None) -> float:
        m = self.method(name)
        t0 = time.perf_counter()
        corpus = self.corpus()
        final = self.layout.index_dir(name)
        previous = final if (final / "manifest.json").exists() else None
        if progress:
            progress.start(name, len(corpus))
        try:
            with staged_dir(final) as tmp:
                extra = m.build(corpus, tmp, previous, progress.advance if progress else None)
                seconds = time.perf_counter() - t0
                atomic_write_json(
                    tmp / "manifest.json",
                    {
                        "method": name,
                        "kind": m.kind,
                        "settings": m.describe(),
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
        ids, texts, hashes, tokens, contexts = [], [], [], [], []
        for cid, text, th, toks, ctx in self.catalog.iter_corpus():
            ids.append(cid)
            texts.append(text)
            hashes.append(th)
            tokens.append(toks.split())
            contexts.append(ctx)
        return Corpus(ids, texts, contexts, hashes, tokens, self.catalog.fingerprint(), self.language())

    def status(self) -> list[MethodStatus]:
        out = []
        for name in self.method_names():
            cfg = self._method_config(name)
            m = self.method(name)
            if not m.indexed:
                parts = getattr(m, "parts", lambda: [])()
                ok = all(self.manifest(p) for p in parts)
                out.append(
                    MethodStatus(
                        name,
                        cfg.kind,
                        ok,
                        ok and all(self._is_fresh(p, self.manifest(p)) for p in parts),
                        cfg.enabled,
                        "" if ok else f"needs {', '.join(parts)}",
                    )
                )
                continue
            man = self.manifest(name)
            wanted, why = self._wanted(name)
            size = (
                sum(f.stat().st_size for f in self.layout.index_dir(name).glob("*") if f.is_file())
                if man
                else 0
            )
            out.append(
                MethodStatus(
                    name,
                    cfg.kind,
                    man is not None,
                    self._is_fresh(name, man),
                    cfg.enabled,
                    "" if man or wanted else why,
                    (man or {}).get("chunks", 0),
                    (man or {}).get("seconds", 0.0),
                    size,
                    (man or {}).get("built_at", 0.0),
                )
            )
        return out

    def default_method(self) -> str:
        if self.config.default_method:
            return self.config.default_method
        status = {s.name: s for s in self.status()}
        for name in ("hybrid", "bm25"):
            if name in status and status[name].built:
                return name
        built = [s.name for s in status.values() if s.built]
        return built[0] if built else "bm25"

    # -- reading ------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, method: str | None = None) -> list[Hit]:
        query = _check_query(query, k)
        m = self.ready_method(method or self.default_method())
        return self.attach(m.search(query, k))

    def search_many(self, queries: Sequence[str], k: int = 10, method: str | None = None) -> list[list[Hit]]:
        for q in queries:
            _check_query(q, k)
        m = self.ready_method(method or self.default_method())
        return [self.attach(h) for h in m.search_many(list(queries), k)]

    def attach(self, hits: list[Hit]) -> list[Hit]:
        """Fill in chunk and document details; drop hits whose chunk is gone (never cite a ghost)."""
        found = self.catalog.chunks([h.chunk_id for h in hits])
        return [
            h.with_(chunk=found[h.chunk_id][0], doc=found[h.chunk_id][1]) for h in hits if h.chunk_id in found
        ]

    def ask(
        self,
        question: str,
        k: int = 5,
        method: str | None = None,
        generator: Any = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        from zhiku.generate.answer import answer_question, make_generator

        t0 = time.perf_counter()
        hits = self.search(question, k=k, method=method)
        t1 = time.perf_counter()
        gen = generator or make_generator(self.config.generator)
        answer = answer_question(question, hits, gen, on_token=on_token)
        answer.timings.update(
            {"retrieve_s": round(t1 - t0, 4), "generate_s": round(time.perf_counter() - t1, 4)}
        )
        return answer

    def documents(self) -> list[DocumentInfo]:
        return self.catalog.documents()

    # -- added for the web API (issue 15); kept at the end of the class for the refactor's merge --
    def delete_documents_by_id(self, doc_ids: Sequence[str]) -> int:
        """Delete several documents (by id) in one change, then bring the indexes up to date once."""
        with self.layout.writer_lock():
            n = self.catalog.delete_documents(list(doc_ids))
            self._build_locked(None, False, None)
        return n

    def chunking_stale(self) -> str | None:
        """Why the stored chunks no longer match zhiku.toml's chunking/tokenizer settings, or None."""
        from zhiku.ingest.rechunk import stale_reason

        return stale_reason(self.catalog, self.config)

    def rechunk(
        self, progress: Progress | None = None, build_progress: BuildProgress | None = None
    ) -> tuple[IngestReport, BuildReport]:
        """Chunk every stored document again with the current settings (no files are read), then
        rebuild every index: a tokenizer change can keep chunk ids and still change their tokens."""
        from zhiku.ingest.rechunk import rechunk

        with self.layout.writer_lock():
            report = rechunk(self.catalog, self.config, progress)
            built = self._build_locked(None, True, build_progress)
        return report, built


def _check_query(query: str, k: int) -> str:
    if not isinstance(query, str) or not query.strip():
        raise UsageError("the query is empty", "Type a question or some keywords")
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}", "Use -k 10, for example")
    return query.strip()


def resolve_layout(name_or_path: str | Path, home: Path | None = None) -> KBLayout:
    text = str(name_or_path)
    if "/" in text or text.startswith("."):
        return KBLayout(Path(text).expanduser().resolve())
    return KBLayout((home or default_home()) / check_kb_name(text))


def list_kbs(home: Path | None = None) -> list[str]:
    root = home or default_home()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "catalog.sqlite").exists())
