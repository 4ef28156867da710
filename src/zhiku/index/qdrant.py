"""Qdrant: a vector index for teams that already run Qdrant, through the same contract as Faiss.

By default it is Qdrant's embedded local mode, a folder ``qdrant/`` inside the index folder, so it
needs no server. Local mode searches by brute force (exact; HNSW settings are accepted and ignored
there) and locks its folder to one client, so ``save`` closes its client before the KB swaps the
folder into place, and opening a folder again closes this process's earlier client of it.

With ``url`` (and ``api_key``, or ZHIKU_QDRANT_API_KEY) it talks to a Qdrant server, where the HNSW
settings (``m``, ``ef_construction``; ``ef_search`` per query, chosen from the size when unset)
are passed through.

Qdrant point ids must be unsigned integers or UUIDs, and zhiku's ids are strings: each id maps to
``uuid5(namespace, id)`` — deterministic, so a delete needs no lookup table — and the string id is kept
in the point's payload, which is what a search returns.
"""

from __future__ import annotations

import atexit
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.errors import BackendError, DependencyMissingError
from zhiku.index.base import Metric, VectorIndex, auto_ef_search, indexes, prepare, to_score_distance
from zhiku.index.pending import PendingRows, batches

_NAMESPACE = uuid.UUID("6c1e8a52-3f4b-5d0e-9a57-7a686b69a0f1")  # fixed: ids must map the same forever
#: local folder -> the client this process has open on it (local mode allows one per folder)
_LOCAL_CLIENTS: dict[str, Any] = {}


def point_id(chunk_id: str) -> str:
    """The Qdrant point id of a zhiku id."""
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


def _models() -> Any:
    try:
        from qdrant_client import models
    except ImportError as e:
        raise DependencyMissingError(
            "the qdrant index needs qdrant-client", "pip install 'zhiku[qdrant]'"
        ) from e
    return models


def _open(url: str | None, path: str, api_key: str | None) -> Any:
    _models()
    from qdrant_client import QdrantClient

    if url is None:
        _release_local(path)
        try:
            client = QdrantClient(path=path)
        except RuntimeError as e:  # another process holds the folder
            raise BackendError(
                f"the Qdrant folder {path} is in use by another process: {e}",
                "Stop the other zhiku process, or run a Qdrant server and set the url option",
            ) from e
        _LOCAL_CLIENTS[path] = client
        return client
    try:
        client = QdrantClient(url=url, api_key=api_key or os.environ.get("ZHIKU_QDRANT_API_KEY") or None)
        client.get_collections()  # fail here, with a clear message, rather than on the first search
    except Exception as e:  # qdrant-client raises httpx/grpc/its own types for connection problems
        raise BackendError(
            f"cannot connect to Qdrant at {url}: {e}",
            "Check the url and api_key options and that Qdrant runs",
        ) from e
    return client


def _release_local(path: str) -> None:
    client = _LOCAL_CLIENTS.pop(path, None)
    if client is not None:
        client.close()


@atexit.register
def _close_local_clients() -> None:
    # A client left to its own __del__ at interpreter exit fails to import what it needs to unlock.
    for path in list(_LOCAL_CLIENTS):
        _release_local(path)


class QdrantIndex(VectorIndex):
    kind = "qdrant"
    supports_delete = True

    def __init__(
        self,
        dim: int,
        metric: Metric = "ip",
        url: str | None = None,
        api_key: str | None = None,
        collection: str = "zhiku",
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int | None = None,
        **options: Any,
    ) -> None:
        # api_key stays out of ``options``: describe() is written into the index manifest.
        super().__init__(
            dim, metric, url=url, collection=collection, m=m, ef_construction=ef_construction,
            ef_search=ef_search, **options,
        )  # fmt: skip
        self.url, self.api_key, self.collection = url, api_key, collection
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        # Vectors wait here until ``save`` knows where the local folder is (the index folder).
        self._pending = PendingRows(dim)
        self._db: Any = None
        self._path = ""
        self._count = 0

    # -- writing ----------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        v = prepare(vectors, self.metric)
        if self._db is not None:
            self._upsert(list(ids), v)
        else:
            self._pending.add(ids, v)
        self._count += len(ids)

    def _upsert(self, ids: list[str], v: np.ndarray) -> None:
        models = _models()
        for part, vectors in batches(ids, v):
            batch = models.Batch(
                ids=[point_id(c) for c in part], vectors=vectors.tolist(), payloads=[{"id": c} for c in part]
            )
            self._db.upsert(self.collection, points=batch, wait=True)

    def _create(self) -> None:
        models = _models()
        if self._db.collection_exists(self.collection):
            self._db.delete_collection(self.collection)
        # Cosine vectors are normalised by ``prepare`` for every backend, so the dot product is cosine.
        distance = models.Distance.EUCLID if self.metric == "l2" else models.Distance.DOT
        self._db.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=self.dim, distance=distance),
            hnsw_config=models.HnswConfigDiff(m=self.m, ef_construct=self.ef_construction),
        )

    def save(self, directory: Path) -> None:
        self._path = str(directory / "qdrant")
        self._db = _open(self.url, self._path, self.api_key)
        self._create()
        if self._pending:
            self._upsert(self._pending.ids, self._pending.matrix())
        self._pending.clear()
        (directory / "qdrant.json").write_text(
            json.dumps({"url": self.url, "collection": self.collection, "count": self._count}),
            encoding="utf-8",
        )
        self.close()  # local mode locks the folder: let ``load`` (after the KB moves it) open it again

    @classmethod
    def load(cls, directory: Path, dim: int, metric: Metric, **options: Any) -> QdrantIndex:
        info = json.loads((directory / "qdrant.json").read_text(encoding="utf-8"))
        index = cls(dim, metric, **{**options, "url": info["url"], "collection": info["collection"]})
        index._path = str(directory / "qdrant")
        index._db = _open(index.url, index._path, index.api_key)
        index._count = int(index._db.count(index.collection, exact=True).count)
        return index

    def remove(self, ids: Sequence[str]) -> None:
        if self._db is None:
            self._pending.remove(ids)
            self._count = len(self._pending)
            return
        models = _models()
        selector = models.PointIdsList(points=[point_id(c) for c in ids])
        self._db.delete(self.collection, points_selector=selector, wait=True)
        self._count = int(self._db.count(self.collection, exact=True).count)

    def __len__(self) -> int:
        return self._count

    # -- reading ----------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float, float]]]:
        q = prepare(queries, self.metric)
        if self._db is None or not self._count:
            return [[] for _ in range(len(q))]
        models = _models()
        # Local mode is exact and warns about search params it cannot use: send them to servers only.
        ef = max(auto_ef_search(self._count, self.ef_search), k)
        params = None if self.url is None else models.SearchParams(hnsw_ef=ef)
        requests = [
            models.QueryRequest(query=row.tolist(), limit=k, params=params, with_payload=["id"]) for row in q
        ]
        answers = self._db.query_batch_points(self.collection, requests=requests)
        # Qdrant reports Euclidean distance itself; the contract's raw L2 value is its square.
        square = self.metric == "l2"
        return [
            [
                (p.payload["id"], *to_score_distance(p.score * p.score if square else p.score, self.metric))
                for p in answer.points
            ]
            for answer in answers
        ]

    def close(self) -> None:
        if self._db is not None:
            if self.url is None and _LOCAL_CLIENTS.get(self._path) is not self._db:
                pass  # a newer index object of this folder took the client over and closed ours
            else:
                _LOCAL_CLIENTS.pop(self._path, None)
                self._db.close()
            self._db = None


indexes.add("qdrant", QdrantIndex)
