"""Milvus Lite as a KB's dense index: the scale-out path, tested with the real thing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.helpers.corpus import EN_GUIDE

from zhiku.config import KBConfig, MethodConfig
from zhiku.index.milvus import MilvusIndex
from zhiku.service import KnowledgeBase


def test_hnsw_parameters_survive_and_recall_matches_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 16)).astype(np.float32)
    ids = [f"v{i}" for i in range(500)]
    index = MilvusIndex(16, "cosine", index_type="HNSW", m=8, ef_construction=64, ef_search=64)
    index.add(ids, x)
    index.save(tmp_path)
    loaded = MilvusIndex.load(tmp_path, 16, "cosine", index_type="HNSW", m=8, ef_search=64)
    # Milvus Lite drops un-nested index parameters silently: check they were kept.
    desc = loaded._db.describe_index(loaded.collection, "vector")
    assert desc["index_type"] == "HNSW" and int(desc["params"]["M"]) == 8
    q = rng.normal(size=(20, 16)).astype(np.float32)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    exact = np.argsort(-(qn @ xn.T), axis=1)[:, :10]
    got = loaded.search(q, 10)
    recall = np.mean(
        [len({ids[j] for j in e} & {i for i, _, _ in g}) / 10 for e, g in zip(exact, got, strict=True)]
    )
    assert recall >= 0.95
    loaded.close()


def test_kb_with_a_milvus_dense_index(tmp_path: Path) -> None:
    methods = {
        "bm25": MethodConfig(kind="bm25"),
        "dense": MethodConfig(kind="dense", enabled=True, options={"embedder": "hashing", "index": "milvus"}),
        "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "dense"]}),
    }
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    (docs / "bikes.txt").write_text("Oil the bicycle chain every 300 kilometres.", encoding="utf-8")
    with KnowledgeBase.open(str(tmp_path / "kb"), config=KBConfig(methods=methods)) as kb:
        kb.ingest([docs])
        assert (kb.layout.index_dir("dense") / "milvus.db").exists()
        assert kb.search("bicycle chain oil", method="dense")[0].doc.title == "bikes"
        kb.delete("bikes.txt")
        assert all(h.doc.title != "bikes" for h in kb.search("bicycle chain oil", method="dense"))
    # a new process (here: a new KB object) loads the collection again after the "restart"
    with KnowledgeBase.open(str(tmp_path / "kb")) as kb:
        assert kb.search("tomatoes sunlight", method="hybrid")[0].doc.title == "Gardening guide"
