"""What both framework adapters share: open a KB, search it under a lock, cite each hit.

The citation is the JSON shape of a hit that the CLI (``--json``) and the web API already use
(``Hit.to_json``), less the text, which a framework carries as the document's content.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from zhiku.service import KnowledgeBase
from zhiku.types import Hit, Where

#: metadata keys a framework may pass on to an LLM prompt; the rest (ids, offsets, scores) are for code
LLM_KEYS = ("title", "path", "heading")


class KBSearcher:
    """A KB opened once and searched under a lock: a KB is not safe for concurrent searches, and
    the async entry points run searches in worker threads."""

    def __init__(self, kb: str | Path | KnowledgeBase, home: Path | None = None) -> None:
        if isinstance(kb, KnowledgeBase):
            self.kb, self._owned = kb, False
        else:
            self.kb, self._owned = KnowledgeBase.open(kb, home=home, create=False), True
        self._lock = threading.Lock()

    def search(
        self, query: str, k: int, method: str | None = None, where: str | Where | None = None
    ) -> list[Hit]:
        # A plain string is a path prefix, the filter people reach for first.
        filt = Where(path_prefix=where) if isinstance(where, str) else where
        with self._lock:
            return self.kb.search(query, k=k, method=method, where=filt)

    def close(self) -> None:
        if self._owned:
            self.kb.close()


def hit_metadata(hit: Hit, rank: int) -> dict[str, Any]:
    """The citation of a hit as flat JSON-friendly metadata: title, path, heading, start/end
    offsets into the document's text, score (and distance for L2), method, chunk and document ids."""
    meta = hit.to_json(rank)
    del meta["text"]
    return meta
