"""``KnowledgeBase``: the one facade the CLI and the web API call.

It owns the catalog, the KB's settings and its methods, and keeps derived indexes in step with the
catalog: after every change it rebuilds what is stale, and a search never silently uses an index
built from another corpus (the manifest's fingerprint must match the catalog's). Nothing outside
this class touches the catalog or a method's internals.

This file is the public API, one short method each; the work is done by the facade's parts in
``zhiku/kb/``: ``methods`` (names, instances, status), ``indexes`` (freshness, build, retrain, load)
and ``search`` (search, rerank, answer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.config import KBConfig, MethodConfig, default_home
from zhiku.errors import ConfigError, NotFoundError, UsageError
from zhiku.generate.conversation import history_from_messages
from zhiku.ids import content_hash
from zhiku.ingest.loaders import supported_extensions
from zhiku.ingest.pipeline import IngestProgress, IngestReport, ingest_paths, ingest_texts
from zhiku.kb.chat import LLM_FAILURES, Chat, Retrieved, llm_error_of
from zhiku.kb.indexes import VERSION, BuildProgress, BuildReport, IndexKeeper
from zhiku.kb.methods import MethodSet, MethodStatus, shared_cache
from zhiku.kb.search import FILTER_DEPTH, Searcher
from zhiku.kb.settings import check_generator, check_reranker, reranker_fields, reranker_names
from zhiku.retrieve.base import Method
from zhiku.retrieve.fusion import FUSION_SEP
from zhiku.store.catalog import Catalog
from zhiku.store.layout import KBLayout, check_kb_name, check_new_kb_name, kb_names
from zhiku.text.normalise import language_of
from zhiku.text.tokenize import Tokenizer, make_tokenizer
from zhiku.types import Answer, Chunk, Corpus, DocumentInfo, Hit, Where

if TYPE_CHECKING:
    from zhiku.embed.base import Embedder
    from zhiku.embed.word_vectors import WordVectors
    from zhiku.generate.base import ContextBlock, Generator
    from zhiku.kb.check import CheckReport
    from zhiku.store.conversations import ConversationStore

# Re-exported: callers import these from the facade's module.
__all__ = [
    "LLM_FAILURES",
    "Chat",
    "ContextBlock",
    "Generator",
    "IngestProgress",
    "Retrieved",
    "WordVectors",
    "check_generator",
    "check_reranker",
    "content_hash",
    "conversation_store",
    "reranker_fields",
    "reranker_names",
    "supported_extensions",
    "ConversationStore",
    "history_from_messages",
    "language_of",
    "llm_error_of",
    "FILTER_DEPTH",
    "FUSION_SEP",
    "VERSION",
    "BuildProgress",
    "BuildReport",
    "KnowledgeBase",
    "MethodStatus",
    "resolve_layout",
    "shared_cache",
]


class KnowledgeBase:
    def __init__(self, layout: KBLayout, config: KBConfig) -> None:
        self.layout = layout
        self.config = config
        self.catalog = Catalog(layout.catalog)
        tok = config.tokenizer.under(layout.root)  # its files relative to the KB folder
        self.tokenizer: Tokenizer = make_tokenizer(**tok.model_dump())
        self._ingest_config = config.updated(tokenizer=tok.model_dump())
        # The facade's parts (zhiku/kb/): each holds this KB and reaches the others through it.
        self._method_set = MethodSet(self)  # names -> configs -> method instances, and their status
        self._indexes = IndexKeeper(self, self._method_set)  # indexes/<method>/: built, loaded
        self._searcher = Searcher(self, self._method_set)  # search, rerank, answer
        #: what the last search wants its reader to know (a part left out because it is not built)
        self.notes: list[str] = []
        #: the indexed methods that answered the last search (a fusion's parts that were ready)
        self.parts_used: list[str] = []
        self._session: _Session | None = None  # open while ``changes()`` runs

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
            if _is_name(name_or_path):  # a KB made by name must be one any computer can copy
                check_new_kb_name(layout.name, kb_names(layout.root.parent))
            layout.root.mkdir(parents=True, exist_ok=True)
            # A zhiku.toml written before the first ingest is the user's: read and completed
            # (keys it lacks get their defaults, its comments and order stay), never replaced.
            (config or KBConfig.load(layout.config)).save(layout.config)
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
        methods: Sequence[str] | None = None,
    ) -> tuple[IngestReport, BuildReport]:
        """Ingest files and folders, then bring the indexes up to date. ``methods`` chooses which
        methods are built (from now on: recorded in zhiku.toml; `zhiku build --method` adds others)."""
        if self._session is not None:  # inside ``changes()``: the session builds once at its end
            if methods:
                self._indexes.choose(methods)
            report, touched = self._ingest_locked(paths, progress, prune)
            self._session.touched += touched
            return report, BuildReport()
        with self.layout.writer_lock():
            self.recover()
            if methods:
                self._indexes.choose(methods)
            backlog = self._indexes.backlog()
            report, touched = self._ingest_locked(paths, progress, prune)
            built = (
                self._build_locked(None, False, build_progress, backlog, touched) if build else BuildReport()
            )
        return report, built

    def _ingest_locked(
        self,
        paths: Sequence[str | Path],
        progress: IngestProgress | None,
        prune: bool,
    ) -> tuple[IngestReport, int]:
        """The catalog part of ``ingest`` (the writer lock held): the report and the chunks touched."""
        from zhiku.kb.build_progress import IngestRecorder

        run = self.catalog.start_run()
        recorder = IngestRecorder(self.layout.indexes, progress)
        try:
            report = ingest_paths(
                self.catalog, [Path(p) for p in paths], self._ingest_config, recorder, prune
            )
        except BaseException as e:
            self.catalog.finish_run(
                run, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed", repr(e)
            )
            raise
        finally:
            recorder.finished()
        self.catalog.finish_run(run, "done", report.summary())
        return report, report.chunks + self.catalog.chunks_of_sources(report.unchanged)

    @contextmanager
    def changes(self, build_progress: BuildProgress | None = None) -> Iterator[BuildReport]:
        """One writer session: several ingests and deletes, then one index build for all of them.

        The writer lock is taken once and recovery runs once; ``ingest`` and
        ``delete_documents_by_id`` inside the block change the catalog only, and the stale indexes
        are built when the block ends (into the yielded report). A server coalesces the uploads
        and deletes that arrive while one build runs into the next session: one rebuild of a
        20,000-chunk BM25 index for all of them, not one each (issue 28). A block that raises
        builds nothing: the catalog keeps what was committed, the indexes stay stale (answering
        from their last build) until the next write builds them.
        """
        if self._session is not None:
            raise UsageError("a change session is already open on this knowledge base", "Close it first")
        report = BuildReport()
        with self.layout.writer_lock():
            self.recover()
            backlog = self._indexes.backlog()
            self._session = _Session()
            try:
                yield report
                touched = self._session.touched
            finally:
                self._session = None
            built = self._build_locked(None, False, build_progress, backlog, touched)
        report.built, report.fresh, report.skipped = built.built, built.fresh, built.skipped

    def add_texts(self, records: Iterable[tuple[str, str, str]], build: bool = True) -> IngestReport:
        """Ingest in-memory ``(source, title, text)`` records (evaluation corpora, API uploads)."""
        with self.layout.writer_lock():
            backlog = self._indexes.backlog()
            report = ingest_texts(self.catalog, records, self._ingest_config)
            if build:
                touched = report.chunks + self.catalog.chunks_of_sources(report.unchanged)
                self._build_locked(None, False, None, backlog, touched)
        return report

    def delete(self, ref: str) -> list[DocumentInfo]:
        """Delete one document (by path, id or path suffix) from the catalog and every index.

        Only what is up to date is kept so (vectors of the deleted chunks dropped): vectors missing
        from an earlier interrupted run are left to `zhiku build`, so a delete takes seconds."""
        docs = self.find_documents(ref)
        if len(docs) > 1:
            listing = "; ".join(d.source for d in docs[:5])
            raise UsageError(
                f"{ref!r} matches {len(docs)} documents: {listing}", "Give the full path or the id"
            )
        self.delete_documents_by_id([d.id for d in docs])
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

    # -- methods: names, instances, status (kb/methods.py) --------------------------------------
    def method_names(self) -> list[str]:
        return self._method_set.names()

    def method_config(self, name: str) -> MethodConfig:
        """The one resolver of method names, for every command: a configured method, a registered
        kind with default options (``w2v-sg``), or a fusion of methods joined by '+' (``bm25+dense``)."""
        return self._method_set.config(name)

    def method(self, name: str) -> Method:
        """The method instance (not necessarily loaded); composites resolve their parts lazily."""
        return self._method_set.get(name)

    def method_settings(self, name: str) -> dict[str, Any]:
        """A method's kind and options, as its index manifest records them."""
        return self.method(name).describe()

    def indexed_parts(self, name: str) -> list[str]:
        """The indexed methods ``name`` needs: itself, or the parts of a composite (recursively)."""
        return self._method_set.indexed_parts(name)

    def parts_in_use(self, name: str) -> list[str]:
        """The parts a composite fuses here: those built or built by default (see ``MethodSet``)."""
        return self._method_set.parts_in_use(name)

    def language(self) -> str:
        return self._method_set.language()

    def status(self) -> list[MethodStatus]:
        return [self.method_status(name) for name in self.method_names()]

    def method_status(self, name: str) -> MethodStatus:
        return self._method_set.status(name)

    def default_method(self) -> str:
        return self._method_set.default()

    def manifest(self, name: str) -> dict[str, Any] | None:
        """What the index of method ``name`` records about its build, or None if it is not built."""
        return self._method_set.manifest(name)

    def index_bytes(self, name: str) -> int:
        return self._method_set.size(name)

    def word_vectors(self, method: str) -> WordVectors:
        """The word vectors of a Word2Vec-backed method (built if needed)."""
        return self.ready_method(method).word_vectors()

    def text_embedder(self) -> Embedder:
        """The embedding model of the KB's dense method (``dense``, else the first of that kind):
        what ``/v1/embeddings`` embeds with."""
        names = [n for n, c in self.config.methods.items() if c.kind == "dense"]
        if not names:
            raise ConfigError(
                f"knowledge base {self.name!r} has no dense method, so it has no embedding model",
                'Use a KB with a dense method, or add [methods.dense] kind = "dense" to its zhiku.toml',
            )
        method = self.method("dense" if "dense" in names else names[0])
        if not method.vectors:  # a configured "dense" is always a vector method; checked, not assumed
            raise ConfigError(f"method {method.name!r} has no embedding model", "Use a dense method")
        embedder: Embedder = method.embedder  # type: ignore[attr-defined]  # declared by .vectors
        return embedder

    def word_vector_methods(self) -> list[str]:
        """Configured methods that have word vectors and are built."""
        return [s.name for s in self.status() if s.built and self.method(s.name).has_word_vectors]

    # -- indexes (kb/indexes.py) -----------------------------------------------------------------
    def ready_method(self, name: str, build: bool = False) -> Method:
        """A method ready to search, loaded. A read never builds: a stale index answers from its
        last complete build (``notes`` says so). ``build``: commands that build what they use
        (``zhiku eval``, ``zhiku tune``) bring it up to date first, under the writer lock."""
        return self._indexes.ready(name, build)

    def note(self, text: str) -> None:
        """Tell the reader of the current search something (shown by the CLI, the API and the page)."""
        if text not in self.notes:
            self.notes.append(text)

    def build(
        self, names: Sequence[str] | None = None, force: bool = False, progress: BuildProgress | None = None
    ) -> BuildReport:
        """Build stale indexes; ``names`` builds those methods even where the default would not.

        A composite name (``hybrid``, ``bm25-expand``, ``bm25+w2v-sg``) builds the indexed methods it
        needs, so building it is never a silent no-op.
        """
        return self._indexes.build(names, force, progress)

    def retrain(
        self, names: Sequence[str] | None = None, progress: BuildProgress | None = None
    ) -> BuildReport:
        """Train new models for the corpus-trained methods among ``names`` (default: those built)."""
        return self._indexes.retrain(names, progress)

    def _build_locked(
        self,
        names: Sequence[str] | None,
        force: bool,
        progress: BuildProgress | None,
        backlog: dict[str, int] | None = None,
        touched: int = 0,
    ) -> BuildReport:
        # The writers here (ingest, add_texts, delete, rechunk) bring the indexes up to date through
        # this; ``backlog``/``touched``: what a small write may embed (see IndexKeeper.build_locked).
        return self._indexes.build_locked(names, force, progress, backlog, touched)

    def corpus(self) -> Corpus:
        return self._indexes.corpus()

    # -- reading (kb/search.py) ------------------------------------------------------------------
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
        return self._searcher.search(query, k, method, where, rerank)

    def search_many(
        self, queries: Sequence[str], k: int = 10, method: str | None = None, rerank: str | None = None
    ) -> list[list[Hit]]:
        return self._searcher.search_many(queries, k, method, rerank)

    def attach(self, hits: list[Hit]) -> list[Hit]:
        """Fill in chunk and document details; drop hits whose chunk is gone (never cite a ghost)."""
        return self._searcher.attach(hits)

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
        return self._searcher.answer(question, hits, generator, on_token, method)

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
        return self._searcher.ask(question, k, method, generator, on_token, on_hits, where, rerank)

    def retrieve(
        self,
        question: str,
        k: int = 5,
        method: str | None = None,
        where: Where | None = None,
        rerank: str | None = None,
        generator: Generator | None = None,
    ) -> tuple[str, list[Hit]]:
        """(the method used, the passages an answer draws on): ``search``, with an llm reranker
        judging with ``generator`` (the one that answers)."""
        return self._searcher.retrieve(question, k, method, where, rerank, generator)

    def chat(
        self,
        generator: Generator | None = None,
        *,
        conversation: str | None = None,
        history: Sequence[tuple[str, str]] = (),
        keep_passages: bool = False,
    ) -> Chat:
        """A conversation: condense the follow-up → retrieve → answer → store the turn (``kb/chat.py``),
        for ``zhiku chat``/``ask`` and the API's ask and chat completions alike."""
        return Chat(self, generator, conversation=conversation, history=history, keep_passages=keep_passages)

    def conversations(self) -> ConversationStore:
        """The KB's stored conversations (list, create, rename, delete, export)."""
        return conversation_store(self.layout.root)

    def reranker(self, rerank: str | None = None, generator: Generator | None = None) -> tuple[Any, Any]:
        """``(reranker or None, its RerankConfig)``: the KB's ``[rerank]`` with ``rerank`` applied.

        Rerankers are kept per setting, so a model loads once and an LLM reranker's cache lives as
        long as the KB is open. The llm kind scores with ``generator`` or else the KB's generator,
        made on first use.
        """
        return self._searcher.reranker(rerank, generator)

    def rerank_hits(
        self,
        query: str,
        hits: list[Hit],
        k: int,
        rerank: str | None = None,
        generator: Generator | None = None,
    ) -> list[Hit]:
        """Attached ``hits`` reordered by the reranker (see ``retrieve/rerank/base.py``), top ``k``."""
        return self._searcher.rerank_hits(query, hits, k, rerank, generator)

    # -- crash recovery (issue 14) ---------------------------------------------------------------
    def check(self) -> CheckReport:
        """Whether the catalog, every built index and the uploads folder agree (``zhiku check``);
        read-only. Leftovers of a killed writer are checked only when no writer is at work."""
        from zhiku.kb.check import check_kb

        return check_kb(self, self._method_set)

    def recover(self) -> Any:
        """Repair what a killed writer left (runs, half-built indexes, uploads); under the writer lock."""
        from zhiku.store.recover import recover

        return recover(self.layout, self.catalog)

    # -- the web API's document management (issue 15) ----------------------------------------------
    def delete_documents_by_id(self, doc_ids: Sequence[str]) -> int:
        """Delete several documents (by id) in one change, then bring the indexes up to date once."""
        if self._session is not None:  # inside ``changes()``: built once at its end
            return self.catalog.delete_documents(list(doc_ids))
        with self.layout.writer_lock():
            self.recover()
            backlog = self._indexes.backlog()
            n = self.catalog.delete_documents(list(doc_ids))
            self._build_locked(None, False, None, backlog)
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


@dataclass
class _Session:
    """What a ``changes()`` block has done so far: the chunks its ingests added or found unchanged
    (what a small write may embed; see ``IndexKeeper.build_locked``)."""

    touched: int = 0


def conversation_store(kb_root: Path) -> ConversationStore:
    """The stored conversations of the KB in ``kb_root`` (without opening its catalog)."""
    from zhiku.store.conversations import ConversationStore

    return ConversationStore.of_kb(kb_root)


def _is_name(name_or_path: str | Path) -> bool:
    text = str(name_or_path)
    return "/" not in text and not text.startswith(".")


def resolve_layout(name_or_path: str | Path, home: Path | None = None) -> KBLayout:
    text = str(name_or_path)
    if not _is_name(text):
        return KBLayout(Path(text).expanduser().resolve())
    return KBLayout((home or default_home()) / check_kb_name(text))
