"""The catalog: SQLite, the knowledge base's source of truth (documents, chunks, ingest runs).

Every change to a document is one transaction (old version out, new version in), so an ingest that
is interrupted leaves whole documents only. ``fingerprint`` summarises the set of chunk ids; it is
kept up to date inside the same transactions, and index manifests record the fingerprint they were
built from, so a stale index is detected with one query instead of a scan.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from zhiku.types import Chunk, DocumentInfo

SCHEMA_VERSION = 2  # 2: chunks.page

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    format TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    chars INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    tokens TEXT NOT NULL,
    page INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id, ord);
CREATE INDEX IF NOT EXISTS documents_by_content ON documents(content_hash);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    summary TEXT
);
"""

# A 60-bit sum of chunk-id prefixes plus a count: order-independent, updated incrementally.
_MOD = 1 << 60


def _id_value(chunk_id: str) -> int:
    return int(chunk_id[:15], 16)


def fingerprint_of(chunk_ids: Iterable[str]) -> str:
    """The fingerprint a catalog holding exactly these chunks records (``Catalog.fingerprint``)."""
    ids = list(chunk_ids)
    return f"{len(ids)}:{sum(map(_id_value, ids)) % _MOD}"


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: str
    source: str
    title: str
    format: str
    content_hash: str
    text: str
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    chunk: Chunk
    text_hash: str
    tokens: str  # space-joined index tokens, cached so rebuilding BM25 never re-runs jieba


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._documents: tuple[tuple[int, int], list[DocumentInfo]] | None = None
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per document.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._read_fingerprint: str | None = None  # set for the span of one_read()
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            if self._meta("schema_version") is None:
                with self.transaction():
                    self._set_meta("schema_version", str(SCHEMA_VERSION))
                    self._set_meta("fingerprint", "0:0")
            self._migrate()
            # Touch every table once: a truncated file often opens fine and fails at the first read.
            for table in ("documents", "chunks", "runs"):
                self.db.execute(f"SELECT * FROM {table} ORDER BY rowid DESC LIMIT 1").fetchall()
        except sqlite3.DatabaseError as e:  # "file is not a database", "disk image is malformed"
            self.db.close()
            from zhiku.errors import catalog_damaged

            raise catalog_damaged(path, e) from e

    def _migrate(self) -> None:
        """Bring a catalog written by an older zhiku up to ``SCHEMA_VERSION``, in place."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(chunks)")}
        if "page" not in columns:
            # Version 1 had no pages: its chunks keep page 0 ("no page") until re-ingested.
            with self.transaction() as db:
                db.execute("ALTER TABLE chunks ADD COLUMN page INTEGER NOT NULL DEFAULT 0")
                self._set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        self.db.close()

    # -- meta -------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        return self._meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._set_meta(key, value)

    def fingerprint(self) -> str:
        if self._read_fingerprint is not None:
            return self._read_fingerprint
        return self._meta("fingerprint") or "0:0"

    @contextmanager
    def one_read(self) -> Iterator[None]:
        """One search: the fingerprint is read once for all of it. Every freshness check on the way
        asks for it (parts in use, the language, each index's readiness): a query per check was 8%
        of a served BM25 search's CPU (py-spy, docs/load.md). A search writes nothing, and a change
        committed meanwhile is seen by the next search, as it would be a moment later anyway."""
        if self._read_fingerprint is not None or self.db.in_transaction:
            yield
            return
        self._read_fingerprint = self._meta("fingerprint") or "0:0"
        try:
            yield
        finally:
            self._read_fingerprint = None

    def _bump_fingerprint(self, added: Sequence[str], removed: Sequence[str]) -> None:
        self._read_fingerprint = None
        count, total = (int(x) for x in (self._meta("fingerprint") or "0:0").split(":"))
        count += len(added) - len(removed)
        total = (total + sum(map(_id_value, added)) - sum(map(_id_value, removed))) % _MOD
        self._set_meta("fingerprint", f"{count}:{total}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # -- documents ----------------------------------------------------------------------------
    def content_hash_of(self, source: str) -> str | None:
        row = self.db.execute("SELECT content_hash FROM documents WHERE source=?", (source,)).fetchone()
        return row[0] if row else None

    def chunks_of_sources(self, sources: Sequence[str]) -> int:
        """How many chunks the documents at these paths have (0 for paths not in the catalog)."""
        total = 0
        for start in range(0, len(sources), 500):
            part = list(sources[start : start + 500])
            marks = ",".join("?" * len(part))
            row = self.db.execute(
                f"SELECT COALESCE(SUM(n_chunks), 0) FROM documents WHERE source IN ({marks})", part
            ).fetchone()
            total += int(row[0])
        return total

    def source_of_content(self, digest: str) -> str | None:
        """The path of a document whose bytes hash to ``digest``, if the catalog holds one."""
        row = self.db.execute(
            "SELECT source FROM documents WHERE content_hash=? ORDER BY source LIMIT 1", (digest,)
        ).fetchone()
        return row[0] if row else None

    def sources(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT source FROM documents ORDER BY source")]

    def put_document(self, doc: DocumentRecord, chunks: Sequence[ChunkRecord]) -> None:
        """Replace whatever version of ``doc.source`` is stored by this one, atomically."""
        with self.transaction() as db:
            self._delete_where("source=?", (doc.source,))
            db.execute(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    doc.id,
                    doc.source,
                    doc.title,
                    doc.format,
                    doc.content_hash,
                    doc.text,
                    len(doc.text),
                    len(chunks),
                    doc.size,
                    doc.mtime,
                    time.time(),
                ),
            )
            db.executemany(
                'INSERT INTO chunks(id, doc_id, ord, start, "end", heading, text, text_hash, tokens, page) '
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        c.chunk.id,
                        doc.id,
                        c.chunk.ord,
                        c.chunk.start,
                        c.chunk.end,
                        c.chunk.heading,
                        c.chunk.text,
                        c.text_hash,
                        c.tokens,
                        c.chunk.page,
                    )
                    for c in chunks
                ],
            )
            self._bump_fingerprint([c.chunk.id for c in chunks], [])

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        with self.transaction():
            n = 0
            for doc_id in doc_ids:
                n += self._delete_where("id=?", (doc_id,))
            return n

    def _delete_where(self, where: str, args: tuple[str, ...]) -> int:
        rows = self.db.execute(f"SELECT id FROM documents WHERE {where}", args).fetchall()
        for (doc_id,) in rows:
            gone = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
            self.db.execute("DELETE FROM documents WHERE id=?", (doc_id,))
            self._bump_fingerprint([], gone)
        return len(rows)

    _DOC_COLS = "id, source, title, format, content_hash, chars, n_chunks, ingested_at"

    def documents(self) -> list[DocumentInfo]:
        # The columns after ``text`` are read through its overflow pages: 15 ms for the 1,103 laws,
        # asked by every document listing of a busy server. Kept until the database changes:
        # ``data_version`` moves when another connection (a writer process) commits, and
        # ``total_changes`` when this one does.
        version = (self.db.execute("PRAGMA data_version").fetchone()[0], self.db.total_changes)
        if self._documents is None or self._documents[0] != version:
            rows = self.db.execute(f"SELECT {self._DOC_COLS} FROM documents ORDER BY source")
            self._documents = (version, [DocumentInfo(*r) for r in rows])
        return list(self._documents[1])

    def document(self, doc_id: str) -> DocumentInfo | None:
        row = self.db.execute(f"SELECT {self._DOC_COLS} FROM documents WHERE id=?", (doc_id,)).fetchone()
        return DocumentInfo(*row) if row else None

    def document_text(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT text FROM documents WHERE id=?", (doc_id,)).fetchone()
        return row[0] if row else None

    def find_documents(self, ref: str) -> list[DocumentInfo]:
        """Documents matching a reference: exact source, id (or a prefix of 6+), or a path suffix."""
        q = f"SELECT {self._DOC_COLS} FROM documents WHERE "
        for where, arg in (("source=?", ref), ("id=?", ref)):
            rows = self.db.execute(q + where, (arg,)).fetchall()
            if rows:
                return [DocumentInfo(*r) for r in rows]
        rows = []
        if len(ref) >= 6:
            rows = self.db.execute(q + "id LIKE ?", (ref + "%",)).fetchall()
        if not rows:
            suffix = "/" + ref.lstrip("/")
            rows = self.db.execute(q + "substr(source, -?) = ?", (len(suffix), suffix)).fetchall()
        return [DocumentInfo(*r) for r in rows]

    # -- chunks -----------------------------------------------------------------------------
    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunk_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks")}

    def problems(self) -> list[str]:
        """What is wrong inside the catalog itself (``zhiku check``): SQLite's own check, chunks whose
        document is gone, documents whose chunk count disagrees, a fingerprint its chunks disagree with."""
        found = [r[0] for r in self.db.execute("PRAGMA quick_check") if r[0] != "ok"]
        orphans = self.db.execute(
            "SELECT COUNT(*) FROM chunks c LEFT JOIN documents d ON d.id = c.doc_id WHERE d.id IS NULL"
        ).fetchone()[0]
        if orphans:
            found.append(f"{orphans} chunks belong to no document")
        miscounted = self.db.execute(
            "SELECT COUNT(*) FROM documents d WHERE d.n_chunks != "
            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id)"
        ).fetchone()[0]
        if miscounted:
            found.append(f"{miscounted} documents record a chunk count their chunks disagree with")
        if (expected := fingerprint_of(self.chunk_ids())) != self.fingerprint():
            found.append(f"its fingerprint {self.fingerprint()} disagrees with its chunks ({expected})")
        return found

    def running_runs(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM runs WHERE status='running'").fetchone()[0])

    def chunks(self, ids: Sequence[str]) -> dict[str, tuple[Chunk, DocumentInfo]]:
        out: dict[str, tuple[Chunk, DocumentInfo]] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f'SELECT c.id, c.doc_id, c.ord, c.text, c.start, c."end", c.heading, c.page, '
                f"d.id, d.source, d.title, d.format, d.content_hash, d.chars, d.n_chunks, d.ingested_at "
                f"FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
                part,
            )
            for r in rows:
                out[r[0]] = (Chunk(*r[:8]), DocumentInfo(*r[8:]))
        return out

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        rows = self.db.execute(
            'SELECT id, doc_id, ord, text, start, "end", heading, page FROM chunks '
            "WHERE doc_id=? ORDER BY ord",
            (doc_id,),
        )
        return [Chunk(*r) for r in rows]

    def iter_corpus(self) -> Iterator[tuple[str, str, str, str, str]]:
        """(chunk id, text, text hash, tokens, title) for every chunk, in a stable order."""
        yield from self.db.execute(
            "SELECT c.id, c.text, c.text_hash, c.tokens, d.title || ' ' || c.heading "
            "FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY d.source, c.ord"
        )

    def sample_text(self, limit_chars: int = 200_000) -> str:
        parts, total = [], 0
        for (t,) in self.db.execute("SELECT text FROM chunks ORDER BY id LIMIT 2000"):
            parts.append(t)
            total += len(t)
            if total >= limit_chars:
                break
        return "\n".join(parts)

    # -- runs -------------------------------------------------------------------------------
    def start_run(self) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO runs(started, status) VALUES (?, 'running')", (time.time(),))
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, summary: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished=?, status=?, summary=? WHERE id=?",
                (time.time(), status, summary, run_id),
            )

    def interrupt_running_runs(self) -> int:
        """Mark runs left "running" by a process that died as "interrupted" (call under the writer lock)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE runs SET finished=?, status='interrupted', "
                "summary=COALESCE(summary, 'the process was stopped before the run ended') "
                "WHERE status='running'",
                (time.time(),),
            )
            return cur.rowcount

    def last_runs(self, n: int = 5) -> list[tuple[int, float, float | None, str, str | None]]:
        return list(
            self.db.execute(
                "SELECT id, started, finished, status, summary FROM runs ORDER BY id DESC LIMIT ?", (n,)
            )
        )
