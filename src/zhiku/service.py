"""``KnowledgeBase``: the one facade the CLI and the web API call.

It owns the catalog, the KB's settings and its methods, and keeps derived indexes in step with the
catalog: after every change it rebuilds what is stale, and a search never silently uses an index
built from another corpus (the manifest's fingerprint must match the catalog's). Nothing outside
this class touches the catalog or a method's internals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.config import KBConfig, MethodConfig, default_home
from zhiku.errors import IndexError_, LockedError, NotFoundError, UsageError, ZhikuError
from zhiku.ingest.pipeline import IngestProgress, IngestReport, ingest_paths, ingest_texts
from zhiku.progress import Progress
from zhiku.retrieve.base import Method, MethodContext, methods
from zhiku.store.catalog import Catalog
from zhiku.store.files import atomic_write_json, staged_dir
from zhiku.store.layout import KBLayout, check_kb_name
from zhiku.text.normalise import language_of
from zhiku.text.token_rows import JoinedTokens
from zhiku.text.tokenize import Tokenizer, make_tokenizer
from zhiku.types import Answer, Chunk, Corpus, DocumentInfo, Hit, Where
from zhiku.version import __version__

if TYPE_CHECKING:
    from zhiku.embed.word2vec import WordVectors
    from zhiku.generate.base import Generator

VERSION = __version__
#: a method name made of several joined by '+' is their reciprocal-rank fusion (``bm25+dense``)
FUSION_SEP = "+"
#: how many hits a filtered search fetches before filtering (it keeps the best k that pass)
FILTER_DEPTH = 200


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


#: what building reports: one phase per method (the CLI draws a bar; the library prints nothing)
BuildProgress = Progress


class KnowledgeBase:
    def __init__(self, layout: KBLayout, config: KBConfig) -> None:
        self.layout = layout
        self.config = config
        self.catalog = Catalog(layout.catalog)
        tok = config.tokenizer.under(layout.root)  # its files relative to the KB folder
        self.tokenizer: Tokenizer = make_tokenizer(**tok.model_dump())
        self._ingest_config = config.updated(tokenizer=tok.model_dump())
        self._methods: dict[str, Method] = {}
        self._adhoc: dict[str, MethodConfig] = {}  # names resolved on the fly (kinds, a+b fusions)
        self._loaded: dict[str, str] = {}  # method -> fingerprint of the index it has loaded
        self._language: tuple[str, str] | None = None  # (fingerprint, language)
        self._rerankers: dict[str, Any] = {}  # per setting: a model loads once, an LLM cache lives on
        #: what the last search wants its reader to know (a part left out because it is not built)
        self.notes: list[str] = []

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
        progress: IngestProgress | None = None,
        prune: bool = True,
        build: bool = True,
        build_progress: BuildProgress | None = None,
    ) -> tuple[IngestReport, BuildReport]:
        with self.layout.writer_lock():
            self.recover()
            run = self.catalog.start_run()
            try:
                report = ingest_paths(
                    self.catalog, [Path(p) for p in paths], self._ingest_config, progress, prune
                )
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
            report = ingest_texts(self.catalog, records, self._ingest_config)
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
            self.recover()
            self.catalog.delete_documents([d.id for d in docs])
            self._build_locked(None, False, None)
        return docs

    # -- documents and chunks -----------------------------------------------------------------
    def documents(self) -> list[DocumentInfo]:
        return self.catalog.documents()

    def document(self, doc_id: str) -> DocumentInfo:
        doc = self.catalog.document(doc_id)
        if doc is None:
            raise NotFoundError(f"no document {doc_id!r} in knowledge base {self.name!r}", "See `zhiku list`")
        return doc

    def document_text(self, doc_id: str) -> str:
        return self.catalog.document_text(self.document(doc_id).id) or ""

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return self.catalog.chunks_of(self.document(doc_id).id)

    def chunk_count(self) -> int:
        return self.catalog.chunk_count()

    def content_hash_of(self, source: str) -> str | None:
        """The content hash the catalog holds for the document at exactly this path, if any."""
        return self.catalog.content_hash_of(source)

    def sources(self) -> list[str]:
        return self.catalog.sources()

    def find_documents(self, ref: str) -> list[DocumentInfo]:
        docs = self.catalog.find_documents(ref)
        if not docs:
            resolved = str(Path(ref).expanduser().resolve())
            docs = self.catalog.find_documents(resolved)
        if not docs:
            raise NotFoundError(f"no document {ref!r} in knowledge base {self.name!r}", "See `zhiku list`")
        return docs

    def last_runs(self, n: int = 5) -> list[tuple[int, float, float | None, str, str | None]]:
        return self.catalog.last_runs(n)

    # -- method names ---------------------------------------------------------------------------
    def method_names(self) -> list[str]:
        return list(self.config.methods)

    def method_config(self, name: str) -> MethodConfig:
        """The one resolver of method names, for every command: a configured method, a registered
        kind with default options (``w2v-sg``), or a fusion of methods joined by '+' (``bm25+dense``)."""
        name = name.strip()
        if name in self.config.methods:
            return self.config.methods[name]
        if name in self._adhoc:
            return self._adhoc[name]
        if FUSION_SEP in name:
            parts = [p.strip() for p in name.split(FUSION_SEP)]
            if len(parts) < 2 or not all(parts):
                raise UsageError(f"{name!r} is not a fusion of methods", "Write it like bm25+dense")
            for part in parts:
                self.method_config(part)
            cfg = MethodConfig(kind="hybrid", options={"of": parts})
        elif name in methods:
            cfg = MethodConfig(kind=name)
        else:
            raise NotFoundError(
                f"unknown method {name!r} in knowledge base {self.name!r}",
                f"Choose one of: {', '.join(self.config.methods)}, a kind: {', '.join(methods.names())}, "
                "or fuse methods with '+', e.g. bm25+dense",
            )
        self._adhoc[name] = cfg
        return cfg

    def method(self, name: str) -> Method:
        """The method instance (not necessarily loaded); composites resolve their parts lazily."""
        name = name.strip()
        if name not in self._methods:
            cfg = self.method_config(name)
            ctx = MethodContext(
                tokenizer=self.tokenizer,
                language=self.language,
                resolve=self.ready_method,
                models_dir=self.layout.models / name,
                cache_dir=shared_cache() or self.layout.root / "cache",
                cache_shared=shared_cache() is not None,
            )
            self._methods[name] = methods.get(cfg.kind)(name, cfg.options, ctx)
        return self._methods[name]

    def method_settings(self, name: str) -> dict[str, Any]:
        """A method's kind and options, as its index manifest records them."""
        return self.method(name).describe()

    def indexed_parts(self, name: str) -> list[str]:
        """The indexed methods ``name`` needs: itself, or the parts of a composite (recursively)."""
        m = self.method(name)
        if m.indexed:
            return [m.name]
        out: list[str] = []
        for part in m.parts():
            out += [p for p in self.indexed_parts(part) if p not in out]
        return out

    def language(self) -> str:
        if self.config.language != "auto":
            return self.config.language
        fp = self.catalog.fingerprint()
        if self._language is None or self._language[0] != fp:
            self._language = (fp, language_of(self.catalog.sample_text()))
        return self._language[1]

    # -- indexes --------------------------------------------------------------------------------
    def manifest(self, name: str) -> dict[str, Any] | None:
        path = self.layout.index_dir(name) / "manifest.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def index_bytes(self, name: str) -> int:
        folder = self.layout.index_dir(name)
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0

    def _is_fresh(self, name: str, manifest: dict[str, Any] | None) -> bool:
        return bool(
            manifest
            and manifest.get("fingerprint") == self.catalog.fingerprint()
            and manifest.get("settings") == self.method(name).describe()
            and manifest.get("tokenizer") == self.tokenizer.describe()
        )

    def _wanted(self, name: str) -> tuple[bool, str]:
        cfg = self.method_config(name)
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
        name = m.name
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
        self._load_or_rebuild(name, m)
        self._loaded[name] = fp
        return m

    def build(
        self, names: Sequence[str] | None = None, force: bool = False, progress: BuildProgress | None = None
    ) -> BuildReport:
        """Build stale indexes; ``names`` builds those methods even where the default would not.

        A composite name (``hybrid``, ``bm25-expand``, ``bm25+w2v-sg``) builds the indexed methods it
        needs, so building it is never a silent no-op.
        """
        wanted: list[str] = []
        for n in names or ():
            wanted += [p for p in self.indexed_parts(n) if p not in wanted]
        if names and self.catalog.chunk_count() == 0:
            # An index of nothing is of no use, and libraries warn about empty means while building it.
            raise IndexError_(
                f"knowledge base {self.name!r} is empty: there is nothing to build an index of",
                f"Add documents first: `zhiku ingest PATH --kb {self.name}`",
            )
        with self.layout.writer_lock():
            self.recover()
            if wanted:
                # An explicit build is a decision: record it so later ingests keep the index current.
                changed = {
                    n: self.method_config(n).model_copy(update={"enabled": True})
                    for n in wanted
                    if self.method_config(n).enabled is not True
                }
                if changed:
                    self.config = self.config.updated(methods={**self.config.methods, **changed})
                    self.config.save(self.layout.config)
            return self._build_locked(wanted or None, force, progress)

    def retrain(
        self, names: Sequence[str] | None = None, progress: BuildProgress | None = None
    ) -> BuildReport:
        """Train new models for the corpus-trained methods among ``names`` (default: those built)."""
        candidates: list[str] = []
        for n in names or [s.name for s in self.status() if s.built]:
            candidates += [p for p in self.indexed_parts(n) if p not in candidates]
        chosen = [n for n in candidates if self.method(n).trainable]
        for n in chosen:
            self.method(n).request_retrain()
        return self.build(chosen, force=True, progress=progress) if chosen else BuildReport()

    def _build_locked(
        self, names: Sequence[str] | None, force: bool, progress: BuildProgress | None
    ) -> BuildReport:
        report = BuildReport()
        if self.catalog.chunk_count() == 0:  # an index of nothing: skip (bm25s warns on empty means)
            indexed = [n for n in names or self.method_names() if self.method(n).indexed]
            report.skipped = [(n, "the knowledge base is empty") for n in indexed]
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
                        "tokenizer": self.tokenizer.describe(),
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
            tokens.append(toks)  # split on use (JoinedTokens): 150 str objects a chunk was most of the RAM
            contexts.append(ctx)
        fingerprint = self.catalog.fingerprint()
        return Corpus(ids, texts, contexts, hashes, JoinedTokens(tokens), fingerprint, self.language())

    def status(self) -> list[MethodStatus]:
        return [self.method_status(name) for name in self.method_names()]

    def method_status(self, name: str) -> MethodStatus:
        cfg = self.method_config(name)
        m = self.method(name)
        if not m.indexed:
            parts = self.indexed_parts(name)
            manifests = {p: self.manifest(p) for p in parts}
            ok = all(manifests.values())
            missing = [p for p, man in manifests.items() if not man]
            return MethodStatus(
                name,
                cfg.kind,
                ok,
                ok and all(self._is_fresh(p, man) for p, man in manifests.items()),
                cfg.enabled,
                "" if ok else f"needs {', '.join(missing)}",
            )
        man = self.manifest(name)
        wanted, why = self._wanted(name)
        return MethodStatus(
            name,
            cfg.kind,
            man is not None,
            self._is_fresh(name, man),
            cfg.enabled,
            "" if man or wanted else why,
            (man or {}).get("chunks", 0),
            (man or {}).get("seconds", 0.0),
            self.index_bytes(name) if man else 0,
            (man or {}).get("built_at", 0.0),
        )

    def default_method(self) -> str:
        if self.config.default_method:
            return self.config.default_method
        status = {s.name: s for s in self.status()}
        for name in ("hybrid", "bm25"):
            if name in status and status[name].built:
                return name
        built = [s.name for s in status.values() if s.built]
        return built[0] if built else "bm25"

    def word_vectors(self, method: str) -> WordVectors:
        """The word vectors of a Word2Vec-backed method (built if needed)."""
        return self.ready_method(method).word_vectors()

    def word_vector_methods(self) -> list[str]:
        """Configured methods that have word vectors and are built."""
        return [s.name for s in self.status() if s.built and self.method(s.name).has_word_vectors]

    # -- reading --------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 10,
        method: str | None = None,
        where: Where | None = None,
        rerank: str | None = None,
    ) -> list[Hit]:
        """Up to ``k`` hits. Without ``method``, the KB's default; if a slow part of it (an embedding
        index) is still being built or was interrupted, the rest searches now and ``notes`` says so.
        Reranked by ``[rerank]``, or by ``rerank`` ("KIND[:VALUE]", "off")."""
        query = _check_query(query, k)
        self.notes = []
        m = self.ready_method(method) if method else self._default_searchable()
        if rerank is not None or self.config.rerank.kind is not None:
            return self._search_reranked(query, k, m, rerank, where)
        if not where:
            return self.attach(m.search(query, k))
        return self._filtered(self.attach(m.search(query, max(k, FILTER_DEPTH))), where)[:k]

    def _default_searchable(self) -> Method:
        name = self.default_method()
        m = self.method(name)
        if m.kind != "hybrid":
            return self.ready_method(name)
        ready: list[str] = []
        missing: list[str] = []
        for part in m.parts():
            slow = [
                p
                for p in self.indexed_parts(part)
                if self.method(p).slow_to_build and not self._is_fresh(p, self.manifest(p))
            ]
            (missing if slow else ready).append(part)
        if not missing or not ready:
            return self.ready_method(name)
        self.notes.append(
            f"{', '.join(missing)} is not built yet (still building, or interrupted): searched with "
            f"{', '.join(ready)} only. `zhiku build --kb {self.name}` finishes it"
        )
        if len(ready) == 1:
            return self.ready_method(ready[0])
        opts = dict(self.method_config(name).options)
        weights = opts.get("weights")
        if weights:
            opts["weights"] = [w for p, w in zip(m.parts(), weights, strict=True) if p in ready]
        adhoc = f"{name}[{'+'.join(ready)}]"
        self._adhoc[adhoc] = MethodConfig(kind="hybrid", options={**opts, "of": ready})
        return self.ready_method(adhoc)

    def search_many(
        self, queries: Sequence[str], k: int = 10, method: str | None = None, rerank: str | None = None
    ) -> list[list[Hit]]:
        for q in queries:
            _check_query(q, k)
        m = self.ready_method(method or self.default_method())
        if rerank is not None or self.config.rerank.kind is not None:
            return self._search_many_reranked(queries, k, m, rerank)
        return [self.attach(h) for h in m.search_many(list(queries), k)]

    def _filtered(self, hits: list[Hit], where: Where) -> list[Hit]:
        uploads = str(self.layout.root.resolve() / "uploads") + "/"
        prefix, contains = where.path_prefix, where.path_contains

        def keep(h: Hit) -> bool:
            source = h.doc.source if h.doc else ""
            relative = source[len(uploads) :] if source.startswith(uploads) else source
            if prefix and not (source.startswith(prefix) or relative.startswith(prefix)):
                return False
            return not contains or contains in source

        return [h for h in hits if keep(h)]

    def attach(self, hits: list[Hit]) -> list[Hit]:
        """Fill in chunk and document details; drop hits whose chunk is gone (never cite a ghost)."""
        found = self.catalog.chunks([h.chunk_id for h in hits])
        return [
            h.with_(chunk=found[h.chunk_id][0], doc=found[h.chunk_id][1]) for h in hits if h.chunk_id in found
        ]

    def generator(self, llm: str | None = None, base_url: str | None = None) -> Generator:
        """The KB's answer generator, or the one ``llm`` names (``ollama:qwen2.5:7b``, ``extractive``)."""
        from zhiku.generate.answer import make_generator

        return make_generator(self.config.generator, llm, base_url)

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        generator: Generator | None = None,
        on_token: Callable[[str], None] | None = None,
        method: str = "",
    ) -> Answer:
        """Generate the answer to ``question`` from retrieved ``hits`` (pieces go to ``on_token``).

        Split from retrieval so a server can retrieve under its read lock and generate outside it.
        """
        from zhiku.generate.answer import answer_question

        t = time.perf_counter()
        result = answer_question(question, hits, generator or self.generator(), on_token, method)
        result.timings["generate_s"] = round(time.perf_counter() - t, 4)
        return result

    def ask(
        self,
        question: str,
        k: int = 5,
        method: str | None = None,
        generator: Generator | None = None,
        on_token: Callable[[str], None] | None = None,
        on_hits: Callable[[list[Hit]], None] | None = None,
        where: Where | None = None,
        rerank: str | None = None,
    ) -> Answer:
        """Retrieve, then answer with numbered citations. ``on_hits`` sees the retrieved passages
        before generation starts, so a caller can still show them if the LLM fails."""
        t0 = time.perf_counter()
        name = method or self.default_method()
        if rerank is not None or self.config.rerank.kind is not None:
            # An llm reranker judges with the LLM that answers (--llm), not only the KB's default.
            self.notes = []
            m = self.ready_method(name)
            hits = self._search_reranked(_check_query(question, k), k, m, rerank, where, generator)
        else:
            hits = self.search(question, k=k, method=name, where=where)
        retrieve_s = round(time.perf_counter() - t0, 4)
        if on_hits:
            on_hits(hits)
        answer = self.answer(question, hits, generator, on_token, name)
        answer.timings["retrieve_s"] = retrieve_s
        return answer

    # -- rerank (issue 10): kept together at the end of the class --------------------------------
    def reranker(self, rerank: str | None = None, generator: Generator | None = None) -> tuple[Any, Any]:
        """``(reranker or None, its RerankConfig)``: the KB's ``[rerank]`` with ``rerank`` applied.

        Rerankers are kept per setting, so a model loads once and an LLM reranker's cache lives as
        long as the KB is open. The llm kind scores with ``generator`` or else the KB's generator,
        made on first use.
        """
        from zhiku.retrieve.rerank import make_reranker, rerank_config, rerankers

        cfg = rerank_config(rerank, self.config.rerank)
        if cfg.kind is None:
            return None, cfg
        needs_llm = rerankers.get(cfg.kind).needs_generator
        key = json.dumps(
            [
                cfg.model_dump(mode="json"),
                self.config.generator.model_dump(mode="json"),
                id(generator) if needs_llm and generator is not None else None,
            ],
            sort_keys=True,
            default=str,
        )
        cache = self._rerankers
        if key not in cache:
            cache[key] = make_reranker(cfg, (lambda: generator) if generator is not None else self.generator)
        return cache[key], cfg

    def rerank_hits(
        self,
        query: str,
        hits: list[Hit],
        k: int,
        rerank: str | None = None,
        generator: Generator | None = None,
    ) -> list[Hit]:
        """Attached ``hits`` reordered by the reranker (see ``retrieve/rerank/base.py``), top ``k``."""
        reranker, cfg = self.reranker(rerank, generator)
        if reranker is None:
            return hits[:k]
        texts = [h.chunk.text if h.chunk is not None else "" for h in hits]
        out: list[Hit] = reranker.rerank(query, hits, texts, top_n=cfg.top_n, threshold=cfg.threshold)
        return out[:k]

    def _search_reranked(
        self,
        query: str,
        k: int,
        m: Method,
        rerank: str | None,
        where: Where | None,
        generator: Generator | None = None,
    ) -> list[Hit]:
        reranker, cfg = self.reranker(rerank, generator)
        depth = max(k, FILTER_DEPTH) if where else k
        if reranker is not None:
            depth = max(depth, cfg.top_n)
        # Attach (and filter) before reranking: the reranker reads the chunk texts, never scores a
        # chunk deleted since the index was built, and spends top_n on hits that can be returned.
        hits = self.attach(m.search(query, depth))
        if where:
            hits = self._filtered(hits, where)
        return self.rerank_hits(query, hits, k, rerank, generator) if reranker is not None else hits[:k]

    def _search_many_reranked(
        self, queries: Sequence[str], k: int, m: Method, rerank: str | None
    ) -> list[list[Hit]]:
        reranker, cfg = self.reranker(rerank)
        if reranker is None:
            return [self.attach(h) for h in m.search_many(list(queries), k)]
        lists = m.search_many(list(queries), max(k, cfg.top_n))  # the first stage still batches
        return [
            self.rerank_hits(q.strip(), self.attach(h), k, rerank)
            for q, h in zip(queries, lists, strict=True)
        ]

    def _load_or_rebuild(self, name: str, m: Method) -> None:
        """Load an index whose manifest says it is fresh; rebuild it if its files cannot be read.

        The manifest is written last, so files damaged under an intact manifest come from outside
        (a disk error, a copy cut short): derived data, rebuilt from the catalog like a stale index.
        """
        try:
            m.load(self.layout.index_dir(name))
            return
        except ZhikuError:
            raise
        except Exception as e:  # numpy, orjson, faiss, gensim: each fails its own way on damaged files
            damaged = e
        try:
            with self.layout.writer_lock():
                self._build_one(name, None)
        except LockedError as e:
            raise IndexError_(
                f"the index of method {name!r} is damaged ({damaged}) and the knowledge base is being "
                "changed by another process",
                "Try again when it is done: the index is then rebuilt",
            ) from e
        m.load(self.layout.index_dir(name))

    # -- crash recovery (issue 14) ---------------------------------------------------------------
    def recover(self) -> Any:
        """Repair what a killed writer left (runs, half-built indexes, uploads); under the writer lock."""
        from zhiku.store.recover import recover

        return recover(self.layout, self.catalog)

    # -- the web API's document management (issue 15) ----------------------------------------------
    def delete_documents_by_id(self, doc_ids: Sequence[str]) -> int:
        """Delete several documents (by id) in one change, then bring the indexes up to date once."""
        with self.layout.writer_lock():
            self.recover()
            n = self.catalog.delete_documents(list(doc_ids))
            self._build_locked(None, False, None)
        return n

    def chunking_stale(self) -> str | None:
        """Why the stored chunks no longer match zhiku.toml's chunking/tokenizer settings, or None."""
        from zhiku.ingest.chunk_settings import stale_reason

        return stale_reason(self.catalog, self._ingest_config)  # the tokenizer's files resolved

    def rechunk(
        self, progress: IngestProgress | None = None, build_progress: BuildProgress | None = None
    ) -> tuple[IngestReport, BuildReport]:
        """Chunk every stored document again with the current settings (no files are read), then
        rebuild every index: a tokenizer change can keep chunk ids and still change their tokens."""
        from zhiku.ingest.rechunk import rechunk

        with self.layout.writer_lock():
            self.recover()
            report = rechunk(self.catalog, self._ingest_config, progress)
            built = self._build_locked(None, True, build_progress)
        return report, built


def shared_cache() -> Path | None:
    """``ZHIKU_VECTOR_CACHE``: one vector cache for every KB (benchmarks that rebuild KBs of the same
    texts embed them once); by default each KB keeps its own in ``<kb>/cache``."""
    import os

    folder = os.environ.get("ZHIKU_VECTOR_CACHE")
    return Path(folder).expanduser() if folder else None


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
