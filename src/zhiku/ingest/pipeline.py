"""Files in, catalog rows out: walk, hash, load, clean, chunk, tokenise, store.

Unchanged files (same path, same bytes) are recognised by their content hash before anything is
parsed, so re-ingesting an unchanged folder costs one read and one hash per file. Parsing and jieba
run in worker processes on large runs; the catalog is written only here, one transaction per
document, in a stable order.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

from zhiku.config import KBConfig
from zhiku.errors import NotFoundError, ZhikuError
from zhiku.ids import chunk_id, content_hash
from zhiku.ingest.chunking import chunk_text
from zhiku.ingest.loaders import LoadOptions, load_bytes, read_checked, supported_extensions
from zhiku.store.catalog import Catalog, ChunkRecord, DocumentRecord
from zhiku.text.normalise import clean
from zhiku.types import Chunk


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: (path, the document it repeats): the same bytes are in the KB already, from another path
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # unsupported in a folder walk
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    warnings: list[str] = field(default_factory=list)  # parts skipped in files that were ingested
    chunks: int = 0
    chars: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
            f"{len(self.removed)} removed",
            f"{len(self.failed)} failed",
        ]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicates (already in the KB from another path)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (unsupported type)")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warnings")
        return ", ".join(parts) + f"; {self.chunks} chunks, {self.chars} chars in {self.seconds:.1f}s"


class IngestProgress(Protocol):
    """What the pipeline reports: files done, with the chunks they gave (the CLI shows the count)."""

    def start(self, total_files: int) -> None: ...
    def advance(self, files: int = 1, chunks: int = 0) -> None: ...
    def pages(self, source: str, done: int, total: int) -> None: ...  # slow pages (OCR) of one file
    def close(self) -> None: ...


class _Silent:
    """Reports nowhere (the default)."""

    def start(self, total_files: int) -> None:
        pass

    def pages(self, source: str, done: int, total: int) -> None:
        pass

    def advance(self, files: int = 1, chunks: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


def walk(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[str, str]], list[Path]]:
    """Files to ingest, unsupported files found in folders, and the folders walked."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    folders: list[Path] = []
    for p in paths:
        if not p.exists():
            raise NotFoundError(f"no such file or folder: {p}", "Check the path")
        if p.is_dir():
            folders.append(p.resolve())
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    f = Path(root, name)
                    if name.startswith("."):
                        continue
                    if f.suffix.lower() in supported_extensions():
                        try:
                            files.append(f.resolve())
                        except (RuntimeError, OSError):
                            # A symlink loop (a.md -> a.md): keep the path as it is, so reading it
                            # fails for this file alone, with one line, and the rest is ingested.
                            files.append(f.absolute())
                    else:
                        skipped.append((str(f), f"unsupported type {f.suffix or '(none)'}"))
        else:
            files.append(p.resolve())
    return list(dict.fromkeys(files)), skipped, folders


@dataclass(frozen=True)
class _Parsed:
    doc: DocumentRecord
    chunks: list[ChunkRecord]
    warnings: tuple[str, ...] = ()


def load_options(config: KBConfig, on_page: Callable[[int, int], None] | None = None) -> LoadOptions:
    ingest = config.ingest
    return LoadOptions(
        ocr=ingest.ocr,
        json_text_field=ingest.json_text_field,
        json_title_field=ingest.json_title_field,
        on_page=on_page,
    )


def parse_file(
    path: Path, data: bytes, digest: str, config: KBConfig, on_page: Callable[[int, int], None] | None = None
) -> _Parsed:
    """Load, clean, chunk and tokenise one file. Runs in a worker process on large runs."""
    from zhiku.ingest.loaders.zipsafe import check_zip, is_zip

    if is_zip(data):  # every ZIP-based format, whichever loader reads it
        check_zip(path, data, int(config.ingest.max_unpacked_mb * 2**20))
    loaded = load_bytes(path, data, load_options(config, on_page))
    st = path.stat()
    parsed = parse_text(
        str(path),
        loaded.text,
        loaded.title,
        loaded.format,
        digest,
        config,
        st.st_size,
        st.st_mtime,
        loaded.pages,
    )
    return _Parsed(parsed.doc, parsed.chunks, loaded.warnings)


def clean_pages(raw: str, pages: Sequence[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """``clean`` each page on its own, so the page offsets still point at the cleaned text."""
    if not pages:
        return clean(raw), []
    text_parts: list[str] = []
    out: list[tuple[int, int]] = []
    offset = 0
    bounds = [o for o, _ in pages[1:]] + [len(raw)]
    for (start, number), end in zip(pages, bounds, strict=True):
        part = clean(raw[start:end])
        if part:
            out.append((offset, number))
            text_parts.append(part)
            offset += len(part) + 2
    return "\n\n".join(text_parts), out


def parse_text(
    source: str,
    raw: str,
    title: str,
    fmt: str,
    digest: str,
    config: KBConfig,
    size: int = 0,
    mtime: float = 0.0,
    pages: Sequence[tuple[int, int]] = (),
) -> _Parsed:
    from zhiku.errors import EmptyFileError
    from zhiku.text.tokenize import make_tokenizer

    text, located = clean_pages(raw, pages)
    if not text:
        raise EmptyFileError(f"{source} has no text", "Check that the file is not empty")
    tokenize = make_tokenizer(**config.tokenizer.model_dump())
    doc = DocumentRecord(
        id=content_hash(f"{source}\x1f{digest}"),
        source=source,
        title=title,
        format=fmt,
        content_hash=digest,
        text=text,
        size=size or len(raw.encode()),
        mtime=mtime,
    )
    records = []
    for i, span in enumerate(chunk_text(text, config.chunking, located)):
        # A chunk that continues a table is read (and indexed) after the table's header row.
        body = f"{span.prefix}\n{text[span.start : span.end]}" if span.prefix else text[span.start : span.end]
        ch = Chunk(
            chunk_id(doc.id, span.start, body), doc.id, i, body, span.start, span.end, span.heading, span.page
        )
        # Title and heading path are indexed with the text: "农业保险条例 > 第三章" tells BM25 what
        # an article is about even when the article itself never names its subject.
        tokens = tokenize(f"{title} {span.heading}\n{body}")
        records.append(ChunkRecord(ch, content_hash(body), " ".join(t.replace(" ", "") for t in tokens)))
    return _Parsed(doc, records)


def _parse_job(
    args: tuple[Path, bytes, str, KBConfig], on_page: Callable[[int, int], None] | None = None
) -> _Parsed | ZhikuError:
    try:
        return parse_file(*args, on_page=on_page)
    except ZhikuError as e:  # returned, not raised: one bad file must not stop the others
        return e


def ingest_paths(
    catalog: Catalog,
    paths: Sequence[Path],
    config: KBConfig,
    progress: IngestProgress | None = None,
    prune: bool = True,
) -> IngestReport:
    t0 = time.perf_counter()
    report = IngestReport()
    progress = progress or _Silent()
    files, report.skipped, folders = walk(paths)

    max_bytes = int(config.ingest.max_file_mb * 1024 * 1024)
    pending: dict[str, str] = {}  # content hash -> path, for files of this run not stored yet
    progress.start(len(files))
    # Files are read, parsed and stored a batch at a time, so a million-chunk folder never sits in
    # memory as bytes (about 1 GB at 1M chunks) before the first document is stored.
    with _Parser(config, progress, _bytes_on_disk(files)) as parse:
        for start in range(0, len(files), BATCH_FILES):
            todo: list[tuple[Path, bytes, str, KBConfig]] = []
            for f in files[start : start + BATCH_FILES]:
                try:
                    data = read_checked(f, max_bytes)
                except ZhikuError as e:
                    report.failed.append((str(f), e.one_line()))
                    progress.advance()
                    continue
                digest = content_hash(data)
                if catalog.content_hash_of(str(f)) == digest:
                    report.unchanged.append(str(f))
                    progress.advance()
                    continue
                same = _same_content(catalog, digest, str(f), pending)
                if same is not None:
                    # One document per content: the same bytes from another path (a copy, an upload
                    # of a file ingested from a folder) add nothing, and the report says which it is.
                    report.duplicates.append((str(f), same))
                    progress.advance()
                    continue
                pending[digest] = str(f)
                todo.append((f, data, digest, config))
            for item, parsed in zip(todo, parse(todo), strict=True):
                _store(catalog, report, progress, str(item[0]), parsed)

    if prune and folders:
        # A file that was ingested from a folder and is gone from it now is gone from the KB too:
        # otherwise deleted documents keep being answered.
        seen = set(map(str, files))
        gone = [s for s in catalog.sources() if s not in seen and any(_under(s, d) for d in folders)]
        gone = [s for s in gone if not Path(s).exists()]
        for s in gone:
            for d in catalog.find_documents(s):
                catalog.delete_documents([d.id])
            report.removed.append(s)
    progress.close()
    _record_settings(catalog, config, report)
    report.seconds = time.perf_counter() - t0
    return report


def _same_content(catalog: Catalog, digest: str, source: str, pending: dict[str, str]) -> str | None:
    """Another path whose document has these bytes (stored, or earlier in this run), or None.

    A file that changed into a copy of another keeps its own document (replaced as usual) only if
    no other path holds those bytes; otherwise its old version stays until it changes again."""
    if digest in pending and pending[digest] != source:
        return pending[digest]
    other = catalog.source_of_content(digest)
    return other if other is not None and other != source else None


def _record_settings(catalog: Catalog, config: KBConfig, report: IngestReport) -> None:
    # The settings the catalog is chunked with, so a later change of them shows as stale.
    if report.added or report.updated:
        from zhiku.ingest.chunk_settings import record_first

        record_first(catalog, config)


def _under(source: str, folder: Path) -> bool:
    return source.startswith(str(folder) + os.sep)


#: files read and parsed per batch (also bounds what waits in the worker pool's queue)
BATCH_FILES = 256


def _bytes_on_disk(files: Sequence[Path]) -> int:
    total = 0
    for f in files:
        try:
            total += f.stat().st_size
        except OSError:
            pass  # reported when the file is read
    return total


def _store(
    catalog: Catalog,
    report: IngestReport,
    progress: IngestProgress,
    source: str,
    parsed: _Parsed | ZhikuError,
) -> None:
    if isinstance(parsed, ZhikuError):
        report.failed.append((source, parsed.one_line()))
        progress.advance()
        return
    report.warnings.extend(parsed.warnings)
    existed = catalog.content_hash_of(source) is not None
    catalog.put_document(parsed.doc, parsed.chunks)
    (report.updated if existed else report.added).append(source)
    report.chunks += len(parsed.chunks)
    report.chars += len(parsed.doc.text)
    progress.advance(chunks=len(parsed.chunks))


class _Parser:
    """Parses batches of files, in worker processes on large runs (one pool for the whole ingest)."""

    def __init__(self, config: KBConfig, progress: IngestProgress, total_bytes: int) -> None:
        self.config = config
        self.progress = progress
        workers = config.ingest.workers or (os.cpu_count() or 1)
        # Worker processes pay for themselves only on large runs (jieba's dictionary loads per process).
        self.workers = workers if workers > 1 and total_bytes >= 2_000_000 else 1
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def __call__(self, todo: list[tuple[Path, bytes, str, KBConfig]]) -> Iterator[_Parsed | ZhikuError]:
        if self.workers <= 1 or len(todo) < 8:
            for job in todo:
                yield _parse_job(job, functools.partial(self.progress.pages, str(job[0])))
            return
        if self.pool is None:
            from zhiku.text.tokenize import make_tokenizer, warm

            # load jieba once, before fork: workers inherit it
            warm(make_tokenizer(**self.config.tokenizer.model_dump()))
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=get_context("fork"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        yield from self.pool.map(_parse_job, todo, chunksize=4)


def _worker_init(parent_pid: int) -> None:
    """A worker holds no KB lock and dies with its parent (a kill -9 of the ingest leaves nothing)."""
    from zhiku.store.layout import close_held_locks
    from zhiku.store.liveness import die_with_parent

    close_held_locks()
    die_with_parent(parent_pid)


def ingest_texts(
    catalog: Catalog,
    records: Iterable[tuple[str, str, str]],
    config: KBConfig,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest in-memory ``(source, title, text)`` records, with the same ids and chunking as files."""
    t0 = time.perf_counter()
    report = IngestReport()
    for source, title, text in records:
        digest = content_hash(text)
        if catalog.content_hash_of(source) == digest:
            report.unchanged.append(source)
            continue
        try:
            parsed = parse_text(source, text, title, "text", digest, config)
        except ZhikuError as e:
            report.failed.append((source, e.one_line()))
            continue
        existed = catalog.content_hash_of(source) is not None
        catalog.put_document(parsed.doc, parsed.chunks)
        (report.updated if existed else report.added).append(source)
        report.chunks += len(parsed.chunks)
        report.chars += len(parsed.doc.text)
        if progress:
            progress(1)
    _record_settings(catalog, config, report)
    report.seconds = time.perf_counter() - t0
    return report
