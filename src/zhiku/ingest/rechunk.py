"""Re-chunking: new chunking or tokenizer settings applied to the documents the catalog holds.

The catalog keeps every document's loaded, cleaned text, so changing ``chunking.size`` (or any
setting that changes chunks or their tokens) needs no access to the original files: each document
is cut and tokenised again from its stored text, keeping its id, title and source. The settings a
catalog was chunked with are recorded in its meta table; ``stale_reason`` compares them with
zhiku.toml, which is how ``zhiku status`` and the page know a re-chunk is due.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from zhiku.config import KBConfig
from zhiku.ingest.pipeline import IngestProgress, IngestReport, _Silent, parse_text
from zhiku.store.catalog import Catalog

META_KEY = "chunk_settings"


def chunk_settings(config: KBConfig) -> dict[str, Any]:
    """Everything that decides a chunk's span and its index tokens."""
    return {
        "chunking": config.chunking.model_dump(mode="json"),
        "tokenizer": config.tokenizer.model_dump(mode="json"),
    }


def recorded(catalog: Catalog) -> dict[str, Any] | None:
    raw = catalog.get_meta(META_KEY)
    return json.loads(raw) if raw else None


def record(catalog: Catalog, config: KBConfig) -> None:
    catalog.set_meta(META_KEY, json.dumps(chunk_settings(config), sort_keys=True))


def record_first(catalog: Catalog, config: KBConfig) -> None:
    """After an ingest: the first settings a catalog is chunked with are its settings. A later ingest
    with other settings leaves them (the older documents still have the old chunks) until a re-chunk."""
    if recorded(catalog) is None:
        record(catalog, config)


def stale_reason(catalog: Catalog, config: KBConfig) -> str | None:
    """Why the stored chunks do not match zhiku.toml ("chunking.size 400 → 300"), or None."""
    before = recorded(catalog)
    if before is None or catalog.chunk_count() == 0:
        return None
    now = chunk_settings(config)
    changes = [
        f"{part}.{key} {before.get(part, {}).get(key)!r} → {value!r}"
        for part, values in now.items()
        for key, value in values.items()
        if before.get(part, {}).get(key) != value
    ]
    return "; ".join(changes) or None


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
