"""Milvus: the scale-out vector index, through the same contract as Faiss.

Locally (and in tests) it is a Milvus Lite file inside the index folder, so the code path under
test is the one that runs against a Milvus server or cluster when ``uri`` points at one
(``uri = "http://milvus:19530"``, token from ``ZHIKU_MILVUS_TOKEN``).

Milvus Lite quirks this module handles: the database file is locked to one client, so ``save``
closes its client before the KB swaps the folder into place; a collection must be loaded again
after a restart; and index parameters must be nested (``params={"params": {...}}``), or they are
dropped without a word.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.errors import BackendError, DependencyMissingError
from zhiku.index.base import Metric, VectorIndex, indexes, prepare, to_score_distance

# Cosine vectors are normalised by ``prepare`` for every backend, so inner product is cosine.
_METRIC = {"ip": "IP", "cosine": "IP", "l2": "L2"}
_BATCH = 1000


def _client(uri: str) -> Any:
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


def _release_local(uri: str) -> None:
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

    def __init__(
        self,
        dim: int,
        metric: Metric = "ip",
        uri: str | None = None,
        collection: str = "zhiku",
        index_type: str = "FLAT",
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 64,
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
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        # Vectors wait here until ``save`` knows where the database lives (the index folder).
        self._ids: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._db: Any = None
        self._path = ""
        self._count = 0

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        v = prepare(vectors, self.metric)
        if self._db is not None:
            self._insert(list(ids), v)
        else:
            self._ids.extend(ids)
            self._vectors.append(v)
        self._count += len(ids)

    def _insert(self, ids: list[str], v: np.ndarray) -> None:
        for i in range(0, len(ids), _BATCH):
            rows = [
                {"id": cid, "vector": vec.tolist()}
                for cid, vec in zip(ids[i : i + _BATCH], v[i : i + _BATCH], strict=True)
            ]
            self._db.insert(self.collection, rows)

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        if self._db.has_collection(self.collection):
            self._db.drop_collection(self.collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params = self._db.prepare_index_params()
        extra = {"M": self.m, "efConstruction": self.ef_construction} if self.index_type == "HNSW" else {}
        params.add_index(
            field_name="vector",
            index_type=self.index_type,
            metric_type=_METRIC[self.metric],
            params={"params": extra},
        )
        self._db.create_collection(self.collection, schema=schema, index_params=params)

    def save(self, directory: Path) -> None:
        uri = self.uri or str(directory / "milvus.db")
        self._db = _client(uri)
        self._create()
        if self._ids:
            self._insert(self._ids, np.vstack(self._vectors))
        self._ids, self._vectors = [], []
        (directory / "milvus.json").write_text(
            json.dumps({"uri": self.uri, "collection": self.collection, "count": self._count}),
            encoding="utf-8",
        )
        self._db.close()  # Milvus Lite locks its file to one client: let ``load`` open it again
        self._db = None
        _release_local(uri)

    @classmethod
    def load(cls, directory: Path, dim: int, metric: Metric, **options: Any) -> MilvusIndex:
        info = json.loads((directory / "milvus.json").read_text(encoding="utf-8"))
        index = cls(dim, metric, **{**options, "uri": info["uri"], "collection": info["collection"]})
        uri = info["uri"] or str(directory / "milvus.db")
        _release_local(uri)
        index._db = _client(uri)
        index._path = uri
        index._db.load_collection(index.collection)  # needed again after every restart
        index._count = int(info["count"])
        return index

    def remove(self, ids: Sequence[str]) -> None:
        if self._db is None:
            drop = set(ids)
            keep = [i for i, x in enumerate(self._ids) if x not in drop]
            matrix = np.vstack(self._vectors) if self._vectors else np.zeros((0, self.dim), np.float32)
            self._ids, self._vectors = [self._ids[i] for i in keep], [matrix[keep]]
            self._count = len(self._ids)
            return
        self._db.delete(self.collection, ids=list(ids))
        self._count = max(0, self._count - len(ids))

    def __len__(self) -> int:
        return self._count

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float, float]]]:
        q = prepare(queries, self.metric)
        if self._db is None or not self._count:
            return [[] for _ in range(len(q))]
        params = {"params": {"ef": max(self.ef_search, k)}} if self.index_type == "HNSW" else {}
        result = self._db.search(
            self.collection,
            data=q.tolist(),
            limit=min(k, self._count),
            anns_field="vector",
            search_params=params,
            output_fields=["id"],
        )
        return [
            [(r["id"], *to_score_distance(float(r["distance"]), self.metric)) for r in row] for row in result
        ]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            if self.uri is None and self._path:
                _release_local(self._path)


indexes.add("milvus", MilvusIndex)
