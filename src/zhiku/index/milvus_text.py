"""BM25 in Milvus: full-text search (Milvus ≥ 2.5, Milvus Lite 3) over zhiku's own tokens.

A collection holds, per chunk, its id and its tokens in an analysed VARCHAR field; Milvus's BM25
function turns the field into a sparse vector and a ``SPARSE_INVERTED_INDEX`` with metric ``BM25``
ranks it. The tokens are the KB's (jieba with its dictionary, stop words, Traditional folding,
stemmed English), the same the in-process index ranks, so both backends score alike; how they are
written for Milvus (hex words) and the BM25 schema are ``milvus_words.py``'s, shared with the words
a Milvus vector collection keeps for one-engine hybrid search. The chunk's text for display stays
in the catalog.

Scores: Milvus's BM25 is Lucene's times ``k1 + 1`` (measured: Lite returns it negated), so it is
divided back to bm25s's ``lucene`` scores. IDF and average length are the collection's.

Consistency follows the Milvus vector index (``index/milvus.py``): each build writes a collection
of its own inside the KB's staged index folder (a Lite file) or, on a server, a new generation of
the KB method's collection; the KB publishes the folder with its manifest, so a delete or re-ingest
is a rebuild that really drops the old rows, and a crashed build leaves nothing the next build
does not drop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from zhiku.errors import IndexError_
from zhiku.index.milvus import barrier, client, collection_for_build, is_server, release_local
from zhiku.index.milvus_words import (
    FULL_TEXT_SINCE,
    MAX_TEXT,
    add_word_fields,
    add_word_index,
    bm25_score,
    check_full_text,
    encode,
)
from zhiku.index.pending import BATCH

__all__ = ["FORMAT", "FULL_TEXT_SINCE", "MAX_TEXT", "MilvusText", "check_full_text", "encode"]

#: written into milvus.json; a change of layout bumps it
FORMAT = "zhiku-bm25/1"
_SEARCH_CONSISTENCY = "Eventually"  # safe after ``barrier`` (see index/milvus.py)
#: the collection's fields (Milvus Lite keeps no collection description to mark it by)
_FIELDS = ("id", "text", "sparse")


class MilvusText:
    """(chunk id, tokens) rows in a Milvus collection, searched by BM25 over tokens."""

    def __init__(
        self, uri: str | None = None, collection: str | None = None, k1: float = 1.2, b: float = 0.75
    ):
        self.uri, self.collection, self.k1, self.b = uri, collection, k1, b
        self._chosen = collection
        self._db: Any = None
        self._path = ""
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def save(self, directory: Path, ids: Sequence[str], tokens: Iterable[Iterable[str]]) -> None:
        uri = self.uri or str(directory / "milvus.db")
        self._db = client(uri)
        try:
            if is_server(uri):
                check_full_text(self._db, uri)
            self.collection = collection_for_build(self._db, self.uri, directory, self._chosen)
            self._create()
            rows: list[dict[str, str]] = []
            for cid, toks in zip(ids, tokens, strict=True):
                rows.append({"id": cid, "text": encode(toks)})
                if len(rows) >= BATCH:
                    self._db.insert(self.collection, rows)
                    rows = []
            if rows:
                self._db.insert(self.collection, rows)
            self._count = len(ids)
            barrier(self._db, self.uri, self.collection)
            info = {"format": FORMAT, "uri": self.uri, "collection": self.collection, "count": self._count}
            (directory / "milvus.json").write_text(json.dumps(info), encoding="utf-8")
        finally:
            self._db.close()  # Milvus Lite locks its file to one client: let ``load`` open it again
            self._db = None
            release_local(uri)

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        if self._db.has_collection(self.collection):
            self._db.drop_collection(self.collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        add_word_fields(schema)
        params = self._db.prepare_index_params()
        add_word_index(params, self.k1, self.b)
        self._db.create_collection(
            self.collection, schema=schema, index_params=params, consistency_level="Strong"
        )

    @classmethod
    def load(cls, directory: Path, k1: float = 1.2, b: float = 0.75) -> MilvusText:
        info = json.loads((directory / "milvus.json").read_text(encoding="utf-8"))
        where = info.get("uri") or "the index folder"
        if info.get("format") != FORMAT:
            raise IndexError_(
                f"the Milvus BM25 index in {directory.name!r} was made by another zhiku version "
                f"({info.get('format', 'unknown format')}, this one reads {FORMAT})",
                f"Rebuild it: `zhiku build --method {directory.name} --force`",
            )
        index = cls(info["uri"], info["collection"], k1, b)
        uri = info["uri"] or str(directory / "milvus.db")
        release_local(uri)
        index._db = client(uri)
        index._path = uri
        try:
            desc = index._db.describe_collection(index.collection)
        except Exception as e:  # pymilvus: the collection is gone (dropped by hand, another server)
            index.close()
            raise IndexError_(
                f"Milvus at {where} has no collection {index.collection!r} for this BM25 index",
                f"Rebuild it: `zhiku build --method {directory.name} --force`",
            ) from e
        fields = sorted(f["name"] for f in desc.get("fields", []))
        if fields != sorted(_FIELDS):
            index.close()
            raise IndexError_(
                f"the Milvus collection {index.collection!r} at {where} was not made by this zhiku "
                f"version (fields {', '.join(fields)}; this one writes {', '.join(_FIELDS)})",
                f"Rebuild it: `zhiku build --method {directory.name} --force`",
            )
        index._db.load_collection(index.collection)  # needed again after every restart
        barrier(index._db, index.uri, index.collection)
        index._count = int(info["count"])
        return index

    def search_many(self, queries: Sequence[Sequence[str]], k: int) -> list[list[tuple[str, float]]]:
        """For each query's tokens: up to k ``(chunk id, BM25)`` best first; [] for no known token."""
        out: list[list[tuple[str, float]]] = [[] for _ in queries]
        texts = [encode(q) for q in queries]
        asked = [i for i, t in enumerate(texts) if t]
        if self._db is None or not self._count or not asked or k <= 0:
            return out
        result = self._db.search(
            self.collection,
            data=[texts[i] for i in asked],
            limit=min(k, self._count),
            anns_field="sparse",
            output_fields=["id"],
            search_params={"params": {}},
            **({"consistency_level": _SEARCH_CONSISTENCY} if is_server(self.uri) else {}),
        )
        for i, row in zip(asked, result, strict=True):
            out[i] = [(r["id"], bm25_score(r["distance"], self.k1)) for r in row]
        return out

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            if self.uri is None and self._path:
                release_local(self._path)
