"""Content-hash ids: the same content always gets the same id, so re-ingest is idempotent."""

from __future__ import annotations

import hashlib


def content_hash(data: bytes | str, length: int = 16) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.blake2b(data, digest_size=16).hexdigest()[:length]


def chunk_id(doc_hash: str, start: int, text: str) -> str:
    return content_hash(f"{doc_hash}\x1f{start}\x1f{text}")
