"""What both framework adapters share: open a KB, search it with a path filter, cite each hit.

``KnowledgeBase.search`` has no filter of its own yet, so ``where`` (a document path prefix) is
applied here, after the search: the adapter asks for more hits until k pass the filter or the
method has no more to give. A filter that matches few documents therefore costs a deeper search.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from zhiku.errors import UsageError
from zhiku.service import KnowledgeBase
from zhiku.types import Hit

#: metadata keys a framework may pass on to an LLM prompt; the rest (offsets, scores) are for code
LLM_KEYS = ("doc", "path", "heading")


class KBSearcher:
    """A KB opened once and searched under a lock: a KB is not safe for concurrent searches, and
    the async entry points run searches in worker threads."""

    def __init__(self, kb: str | Path | KnowledgeBase, home: Path | None = None) -> None:
        if isinstance(kb, KnowledgeBase):
            self.kb, self._owned = kb, False
        else:
            self.kb, self._owned = KnowledgeBase.open(kb, home=home, create=False), True
        self._lock = threading.Lock()

    def search(self, query: str, k: int, method: str | None = None, where: str | None = None) -> list[Hit]:
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}", "Use k=4, for example")
        with self._lock:
            if not where:
                return self.kb.search(query, k=k, method=method)
            prefixes = _prefixes(where)
            depth = 4 * k
            while True:
                hits = self.kb.search(query, k=depth, method=method)
                kept = [h for h in hits if h.doc is not None and h.doc.source.startswith(prefixes)]
                if len(kept) >= k or len(hits) < depth:
                    return kept[:k]
                depth *= 4

    def close(self) -> None:
        if self._owned:
            self.kb.close()


def _prefixes(where: str) -> tuple[str, ...]:
    """The prefix as given, and as an absolute path: files are catalogued by absolute path."""
    resolved = str(Path(where).expanduser().resolve())
    if where.endswith(("/", "\\")):
        resolved += where[-1]
    return (where, resolved)


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """The citation of a hit, as flat JSON-friendly metadata (what both frameworks expect)."""
    chunk, doc = hit.chunk, hit.doc
    if chunk is None or doc is None:  # KnowledgeBase.search attaches both; anything else is a bug
        raise ValueError(f"hit {hit.chunk_id} has no chunk or document attached")
    return {
        "chunk_id": hit.chunk_id,
        "doc_id": doc.id,
        "doc": doc.title,
        "path": doc.source,
        "heading": chunk.heading,
        "start": chunk.start,
        "end": chunk.end,
        "score": hit.score,
        "distance": hit.distance,
        "method": hit.method,
    }
