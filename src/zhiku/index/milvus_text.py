"""BM25 in Milvus: full-text search (Milvus ≥ 2.5, Milvus Lite 3) over zhiku's own tokens.

A collection holds, per chunk, its id and its tokens in an analysed VARCHAR field; Milvus's BM25
function turns the field into a sparse vector and a ``SPARSE_INVERTED_INDEX`` with metric ``BM25``
ranks it. The tokens are the KB's (jieba with its dictionary, stop words, Traditional folding,
stemmed English), the same the in-process index ranks, so both backends score alike: each token is
written as the hex of its UTF-8 bytes, which Milvus's ``standard`` tokenizer keeps as one word (it
would cut a Chinese word into characters, and Lite refuses the ``whitespace`` tokenizer). The
chunk's text for display stays in the catalog.

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
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from zhiku.errors import BackendError, IndexError_
from zhiku.index.milvus import barrier, client, collection_for_build, is_server, release_local
from zhiku.index.pending import BATCH

#: written into milvus.json; a change of layout bumps it
FORMAT = "zhiku-bm25/1"
#: Milvus's VARCHAR limit, in bytes; a longer chunk keeps its first tokens (never reached by
#: zhiku's chunk sizes: ≈ 5,000 Chinese words)
MAX_TEXT = 65_535
_SEARCH_CONSISTENCY = "Eventually"  # safe after ``barrier`` (see index/milvus.py)
FULL_TEXT_SINCE = (2, 5)
#: the collection's fields (Milvus Lite keeps no collection description to mark it by)
_FIELDS = ("id", "text", "sparse")


def encode(tokens: Iterable[str]) -> str:
    """Tokens as one space-separated string of hex words (one analyser word per token)."""
    out, size = [], 0
    for t in tokens:
        h = t.encode("utf-8").hex()
        if not h:
            continue
        size += len(h) + 1
        if size > MAX_TEXT:
            break
        out.append(h)
    return " ".join(out)


def check_full_text(db: Any, uri: str) -> None:
    """Refuse a server older than full-text search, in one line."""
    version = str(db.get_server_version())
    m = re.search(r"(\d+)\.(\d+)", version)
    # the standalone server from PyPI says "v2.3.5-lite"; Milvus Lite 3 says "milvus_lite-3.2.2"
    if m and (int(m[1]), int(m[2])) < FULL_TEXT_SINCE:
        raise BackendError(
            f"Milvus at {uri} is version {version}: BM25 full-text search needs Milvus 2.5 or newer",
            "Upgrade the server, or keep this bm25 method in-process (remove index = 'milvus')",
        )


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
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        if self._db.has_collection(self.collection):
            self._db.drop_collection(self.collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field(
            "text",
            DataType.VARCHAR,
            max_length=MAX_TEXT,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "standard"},
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        params = self._db.prepare_index_params()
        params.add_index(
            field_name="sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"params": {"bm25_k1": self.k1, "bm25_b": self.b}},  # nested, or Lite drops them
        )
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
        scale = self.k1 + 1  # Milvus's BM25 is Lucene's times (k1 + 1); Lite negates it
        for i, row in zip(asked, result, strict=True):
            out[i] = [(r["id"], abs(float(r["distance"])) / scale) for r in row]
        return out

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            if self.uri is None and self._path:
                release_local(self._path)
