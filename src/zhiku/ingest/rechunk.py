"""Re-chunking: new chunking or tokenizer settings applied to the documents the catalog holds.

The catalog keeps every document's loaded, cleaned text, so changing ``chunking.size`` (or any
setting that changes chunks or their tokens) needs no access to the original files: each document
is cut and tokenised again from its stored text, keeping its id, title and source. The settings a
catalog was chunked with are recorded in its meta table; ``stale_reason`` compares them with
zhiku.toml, which is how ``zhiku status`` and the page know a re-chunk is due.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from zhiku.config import KBConfig
from zhiku.ingest.chunk_settings import record
from zhiku.ingest.pipeline import IngestProgress, IngestReport, _Silent, parse_text
from zhiku.store.catalog import Catalog


def rechunk(
    catalog: Catalog,
    config: KBConfig,
    progress: IngestProgress | None = None,
    on_document: Callable[[str], None] | None = None,
) -> IngestReport:
    """Cut and tokenise every stored document again with ``config``; one transaction per document."""
    t0 = time.perf_counter()
    report = IngestReport()
    progress = progress or _Silent()
    rows = catalog.db.execute(
        "SELECT source, title, format, content_hash, text, size, mtime FROM documents ORDER BY source"
    ).fetchall()
    progress.start(len(rows))
    for source, title, fmt, digest, text, size, mtime in rows:
        parsed = parse_text(source, text, title, fmt, digest, config, size, mtime)
        catalog.put_document(parsed.doc, parsed.chunks)
        report.updated.append(source)
        report.chunks += len(parsed.chunks)
        report.chars += len(parsed.doc.text)
        progress.advance(chunks=len(parsed.chunks))
        if on_document:
            on_document(source)
    progress.close()
    record(catalog, config)
    report.seconds = time.perf_counter() - t0
    return report
