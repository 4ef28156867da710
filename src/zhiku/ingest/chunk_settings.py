"""The chunking and tokenizer settings a catalog was chunked with, recorded in its meta table.

``stale_reason`` compares them with zhiku.toml, which is how ``zhiku status`` and the page know a
re-chunk (``ingest/rechunk.py``) is due.
"""

from __future__ import annotations

import json
from typing import Any

from zhiku.config import KBConfig
from zhiku.store.catalog import Catalog

META_KEY = "chunk_settings"


def chunk_settings(config: KBConfig) -> dict[str, Any]:
    """Everything that decides a chunk's span and its index tokens.

    The tokenizer's files count by content (the user dictionary's hash, the words a synonyms file
    adds to jieba), not by path: the catalog caches each chunk's tokens, so an edited dictionary
    needs a re-chunk, which an index rebuild alone (from the cached tokens) would not do. ``config``
    has its paths resolved (``TokenizerConfig.under``).
    """
    from zhiku.text.tokenize import tokenizer_identity

    tok = config.tokenizer
    return {
        "chunking": config.chunking.model_dump(mode="json"),
        "tokenizer": {
            **tok.model_dump(mode="json"),
            **tokenizer_identity(tok.user_dict, tok.synonyms, tok.fold_traditional),
        },
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
