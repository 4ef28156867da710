"""Milvus: the scale-out vector index, through the same contract as Faiss.

Locally (and in tests) it is a Milvus Lite file inside the index folder, so the code path under
test is the one that runs against a Milvus server or cluster when ``uri`` points at one
(``uri = "http://milvus:19530"``, token from ``ZHIKU_MILVUS_TOKEN``).

Milvus Lite quirks this module handles: the database file is locked to one client, so ``save``
closes its client before the KB swaps the folder into place; a collection must be loaded again
after a restart; and index parameters must be nested (``params={"params": {...}}``), or they are
dropped without a word.

Against a server (tested: Milvus standalone 2.3.5) several KBs share one Milvus, so each build
writes a collection of its own, named after the KB, the method and the build (see
``collection_name``), while readers keep using the previous one until the KB publishes the new
folder. Collections of builds whose folder the KB has since deleted are dropped by the next build,
so a KB holds at most three (the live one, the one before it, the new one) and a failed build's
collection goes with the next.

Consistency: the server's default (Bounded) answered a search right after an insert with nothing,
and a Strong search waits for the next time tick (≈ 200 ms a query, measured). Writes here happen
only in ``save`` and ``remove``, so each ends with one Strong read (a barrier: it returns once the
server serves everything written before it), and searches then ask for no wait ("Eventually"):
they see every write that returned. ``load`` passes the barrier once too, for a server that has
just restarted and is replaying its log.

Words (one-engine hybrid): when the vector method hands it the chunks' tokens (``set_words``), the
collection also keeps them, encoded and ranked by Milvus's BM25 function as ``milvus_text.py``
does (``milvus_words.py``, with ``bm25_k1``/``bm25_b``), so one ``hybrid_search`` request can rank
a question by its words and its vector and fuse the two lists with Milvus's ranker. A server
older than full text (2.3.5) gets a collection without words and says why (``words_missing``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.errors import BackendError, ConfigError, DependencyMissingError
from zhiku.index.base import Metric, VectorIndex, auto_ef_search, indexes, prepare, to_score_distance
from zhiku.index.milvus_words import (
    SPARSE_FIELD,
    TEXT_FIELD,
    add_word_fields,
    add_word_index,
    encode,
    full_text_missing,
)
from zhiku.index.pending import PendingRows, batches

# Cosine vectors are normalised by ``prepare`` for every backend, so inner product is cosine.
_METRIC = {"ip": "IP", "cosine": "IP", "l2": "L2"}
_CONSISTENCY = "Strong"
_SEARCH_CONSISTENCY = "Eventually"  # safe after ``_barrier``; see the module docstring
# Milvus accepts letters, digits and '_' in a collection name, starting with a letter or '_'.
_VALID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
# A KB publishes indexes/<method> from a staged sibling folder indexes/.<method>.<random>.
_STAGED = re.compile(r"^\.(?P<method>.+)\.(?P<gen>[A-Za-z0-9_]+)$")


def is_server(uri: str | None) -> bool:
    """A Milvus server or cluster (``http://…``), not a Milvus Lite file inside the index folder."""
    return bool(uri) and not str(uri).endswith(".db")


def check_collection(name: str) -> str:
    if not _VALID.match(name):
        raise ConfigError(
            f"invalid Milvus collection name {name!r}",
            "Use letters, digits and '_' (starting with a letter or '_'), at most 255 characters",
        )
    return name


def collection_prefix(directory: Path, chosen: str | None) -> tuple[str, str, Path | None]:
    """(prefix shared by every build of this KB method, this build's generation, the KB's indexes folder).

    The prefix is readable (KB and method, non-ASCII as '_') and unique: an 8-hex hash of the host
    and the KB folder's absolute path, so two KBs of the same name in two homes (or on two
    machines) sharing a server never touch each other's collections. A ``collection`` option
    replaces the readable part.
    """
    directory = directory.resolve()
    staged = _STAGED.match(directory.name)
    if staged and directory.parent.name == "indexes":
        kb_root, method, gen = directory.parent.parent, staged["method"], staged["gen"]
        siblings: Path | None = directory.parent
    else:  # not inside a KB (the index used on its own): one collection per save
        kb_root, method, gen, siblings = directory.parent, directory.name, secrets.token_hex(4), None
    owner = f"{socket.gethostname()}:{kb_root}:{method}"
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:8]
    readable = chosen if chosen else re.sub(r"[^A-Za-z0-9_]", "_", f"{kb_root.name}_{method}")[:64]
    return check_collection(f"zk_{readable}_{digest}_"), gen, siblings


def collection_for_build(db: Any, uri: str | None, directory: Path, chosen: str | None) -> str:
    """The collection a build into ``directory`` writes: a Lite file's own name, or on a server a
    new generation of this KB method's prefix (its unpublished generations dropped first)."""
    if not is_server(uri):
        return check_collection(chosen or "zhiku")  # a Milvus Lite file of its own
    prefix, gen, siblings = collection_prefix(directory, chosen)
    if siblings is not None:
        _drop_unpublished(db, prefix, siblings)
    return prefix + gen


def _drop_unpublished(db: Any, prefix: str, siblings: Path) -> None:
    """Drop this KB method's collections whose build folder the KB has deleted (or never kept)."""
    for name in db.list_collections():
        if not name.startswith(prefix):
            continue
        gen = name[len(prefix) :]
        alive = any(
            (m := _STAGED.match(p.name)) and m["gen"] == gen
            for p in siblings.iterdir()
            if p.is_dir() and not p.is_symlink()
        )
        if not alive:
            db.drop_collection(name)


def barrier(db: Any, uri: str | None, collection: str | None) -> None:
    """Return once the server serves every write acknowledged so far (a Strong read)."""
    if is_server(uri):
        db.query(collection, filter='id != ""', output_fields=["count(*)"], consistency_level="Strong")


def client(uri: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as e:
        raise DependencyMissingError(
            "the milvus index needs pymilvus", "pip install 'pymilvus[milvus-lite]'"
        ) from e
    try:
        return MilvusClient(uri, token=os.environ.get("ZHIKU_MILVUS_TOKEN", ""))
    except Exception as e:  # pymilvus raises its own exception types for every connection problem
        raise BackendError(
            f"cannot connect to Milvus at {uri}: {e}", "Check the uri option and that Milvus runs"
        ) from e


def release_local(uri: str) -> None:
    """Stop Milvus Lite's in-process server for a local file.

    Milvus Lite 3 serves each ``.db`` path from a server thread that outlives the client, keyed by
    path: a folder swapped in under the same path would otherwise be answered by the old server.
    """
    if uri.endswith(".db"):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


class MilvusIndex(VectorIndex):
    kind = "milvus"
    supports_delete = True
    keeps_words = True

    def __init__(
        self,
        dim: int,
        metric: Metric = "ip",
        uri: str | None = None,
        collection: str | None = None,
        index_type: str = "FLAT",
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int | None = None,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        **options: Any,
    ) -> None:
        super().__init__(
            dim,
            metric,
            uri=uri,
            collection=collection,
            index_type=index_type,
            m=m,
            ef_construction=ef_construction,
            ef_search=ef_search,
            **options,
        )
        self.uri, self.collection, self.index_type = uri, collection, index_type.upper()
        self._chosen = collection  # the option; ``collection`` becomes the name ``save`` created
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.bm25_k1, self.bm25_b = bm25_k1, bm25_b
        self._words: dict[str, str] | None = None  # chunk id -> encoded words, until ``save``
        self._no_words = "built without words"  # why the collection ranks no words ("" = it does)
        # Vectors wait here until ``save`` knows where the database lives (the index folder).
        self._pending = PendingRows(dim)
        self._db: Any = None
        self._path = ""
        self._count = 0

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        v = prepare(vectors, self.metric)
        if self._db is not None:
            self._insert(list(ids), v)
            self._barrier()
        else:
            self._pending.add(ids, v)
        self._count += len(ids)

    def _insert(self, ids: list[str], v: np.ndarray) -> None:
        words = self._words if not self._no_words else None
        for part, vectors in batches(ids, v):
            rows: list[dict[str, Any]] = [
                {"id": cid, "vector": vec.tolist()} for cid, vec in zip(part, vectors, strict=True)
            ]
            if words is not None:
                for row in rows:
                    row[TEXT_FIELD] = words.get(row["id"], "")
            self._db.insert(self.collection, rows)

    def set_words(self, ids: Sequence[str], tokens: Sequence[Sequence[str]]) -> None:
        self._words = {cid: encode(t) for cid, t in zip(ids, tokens, strict=True)}

    def words_missing(self) -> str:
        return self._no_words

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        if self._db.has_collection(self.collection):
            self._db.drop_collection(self.collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        if not self._no_words:
            add_word_fields(schema)
        params = self._db.prepare_index_params()
        if not self._no_words:
            add_word_index(params, self.bm25_k1, self.bm25_b)
        extra = {"M": self.m, "efConstruction": self.ef_construction} if self.index_type == "HNSW" else {}
        params.add_index(
            field_name="vector",
            index_type=self.index_type,
            metric_type=_METRIC[self.metric],
            params={"params": extra},
        )
        self._db.create_collection(
            self.collection, schema=schema, index_params=params, consistency_level=_CONSISTENCY
        )

    def _name_for(self, directory: Path) -> str:
        return collection_for_build(self._db, self.uri, directory, self._chosen)

    def _barrier(self) -> None:
        barrier(self._db, self.uri, self.collection)

    def save(self, directory: Path) -> None:
        uri = self.uri or str(directory / "milvus.db")
        self._db = client(uri)
        self.collection = self._name_for(directory)
        if self._words is not None:
            # a server older than full text keeps the vectors alone, and says why
            self._no_words = full_text_missing(self._db, uri) if is_server(uri) else ""
        self._create()
        if self._pending:
            self._insert(self._pending.ids, self._pending.matrix())
        self._barrier()
        self._pending.clear()
        self._words = None
        info = {
            "uri": self.uri,
            "collection": self.collection,
            "count": self._count,
            "words": not self._no_words,
            "words_missing": self._no_words,
            "bm25_k1": self.bm25_k1,
            "bm25_b": self.bm25_b,
        }
        (directory / "milvus.json").write_text(json.dumps(info), encoding="utf-8")
        self._db.close()  # Milvus Lite locks its file to one client: let ``load`` open it again
        self._db = None
        release_local(uri)

    @classmethod
    def load(cls, directory: Path, dim: int, metric: Metric, **options: Any) -> MilvusIndex:
        info = json.loads((directory / "milvus.json").read_text(encoding="utf-8"))
        index = cls(dim, metric, **{**options, "uri": info["uri"], "collection": info["collection"]})
        # a collection of a zhiku before words were kept has no "words": it ranks vectors only
        index._no_words = (
            ""
            if info.get("words")
            else str(info.get("words_missing") or "")
            or (
                f"the Milvus collection in {directory.name!r} was built by a zhiku version that kept no words"
            )
        )
        index.bm25_k1 = float(info.get("bm25_k1", index.bm25_k1))
        index.bm25_b = float(info.get("bm25_b", index.bm25_b))
        uri = info["uri"] or str(directory / "milvus.db")
        release_local(uri)
        index._db = client(uri)
        index._path = uri
        index._db.load_collection(index.collection)  # needed again after every restart
        index._barrier()
        index._count = int(info["count"])
        return index

    def remove(self, ids: Sequence[str]) -> None:
        if self._db is None:
            self._pending.remove(ids)
            self._count = len(self._pending)
            return
        self._db.delete(self.collection, ids=list(ids))
        self._barrier()
        self._count = max(0, self._count - len(ids))

    def __len__(self) -> int:
        return self._count

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float, float]]]:
        q = prepare(queries, self.metric)
        if self._db is None or not self._count:
            return [[] for _ in range(len(q))]
        ef = auto_ef_search(self._count, self.ef_search)
        params = {"params": {"ef": max(ef, k)}} if self.index_type == "HNSW" else {}
        result = self._db.search(
            self.collection,
            data=q.tolist(),
            limit=min(k, self._count),
            anns_field="vector",
            search_params=params,
            output_fields=["id"],
            **({"consistency_level": _SEARCH_CONSISTENCY} if is_server(self.uri) else {}),
        )
        return [
            [(r["id"], *to_score_distance(float(r["distance"]), self.metric)) for r in row] for row in result
        ]

    def describe(self) -> dict[str, Any]:
        # whether the last build kept words (a server older than full text keeps none)
        missing = {"words_missing": self._no_words} if self._no_words else {}
        return {**super().describe(), "words": not self._no_words, **missing}

    def hybrid_search(
        self,
        words: Sequence[str],
        vector: np.ndarray,
        depth: int,
        k: int,
        ranker: str,
        k_rrf: int = 60,
        weights: Sequence[float] = (1.0, 1.0),
    ) -> list[tuple[str, float]]:
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        text = encode(words)
        q = prepare(np.asarray(vector, dtype=np.float32).reshape(1, -1), self.metric)
        if self._db is None or not self._count or self._no_words:
            return []
        limit = min(depth, self._count)
        ef = auto_ef_search(self._count, self.ef_search)
        dense_params = {"params": {"ef": max(ef, limit)}} if self.index_type == "HNSW" else {}
        requests = [AnnSearchRequest(q.tolist(), "vector", dense_params, limit)]
        if text:  # a question with no known word is ranked by its vector alone
            requests.insert(0, AnnSearchRequest([text], SPARSE_FIELD, {"params": {}}, limit))
        if ranker == "rrf":
            fuse: Any = RRFRanker(k_rrf)
        else:
            fuse = WeightedRanker(*(weights if text else weights[-1:]))
        result = self._db.hybrid_search(
            self.collection,
            requests,
            fuse,
            limit=min(k, self._count),
            output_fields=["id"],
            **({"consistency_level": _SEARCH_CONSISTENCY} if is_server(self.uri) else {}),
        )
        return [(r["id"], float(r["distance"])) for r in result[0]]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            if self.uri is None and self._path:
                release_local(self._path)


indexes.add("milvus", MilvusIndex)
