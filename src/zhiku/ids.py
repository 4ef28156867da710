"""Content-hash ids: the same content always gets the same id, so re-ingest is idempotent."""

from __future__ import annotations

import hashlib


def content_hash(data: bytes | str, length: int = 16) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.blake2b(data, digest_size=16).hexdigest()[:length]


def chunk_id(doc_id: str, start: int, text: str) -> str:
    """Hash of the document's id (its path and content), the offset and the text.

    The document id, not only its content, goes in: two files with the same text at different paths
    are two documents, and their chunks must not collide.
    """
    return content_hash(f"{doc_id}\x1f{start}\x1f{text}")
