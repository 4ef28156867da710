"""Qdrant (embedded local mode) as a KB's dense index, tested with the real qdrant-client."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.helpers.corpus import EN_GUIDE

from zhiku.config import KBConfig, MethodConfig
from zhiku.index.qdrant import QdrantIndex, point_id
from zhiku.service import KnowledgeBase


def test_ids_map_to_stable_uuids_and_come_back_as_strings(tmp_path: Path) -> None:
    assert point_id("doc1:0") == point_id("doc1:0") != point_id("doc1:1")
    index = QdrantIndex(3, "ip")
    index.add(["文档一:0", "doc/two:1"], np.eye(3, dtype=np.float32)[:2])
    index.save(tmp_path)
    loaded = QdrantIndex.load(tmp_path, 3, "ip")
    assert [i for i, _, _ in loaded.search(np.eye(3, dtype=np.float32)[:1], 2)[0]] == [
        "文档一:0",
        "doc/two:1",
    ]
    assert (tmp_path / "qdrant").is_dir()
    loaded.close()


def test_a_second_process_cannot_share_the_local_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    index = QdrantIndex(2, "ip")
    index.add(["a"], np.ones((1, 2), np.float32))
    index.save(tmp_path)
    held = QdrantIndex.load(tmp_path, 2, "ip")
    code = (
        "import sys; from pathlib import Path; from zhiku.index.qdrant import QdrantIndex\n"
        "from zhiku.errors import BackendError\n"
        "try: QdrantIndex.load(Path(sys.argv[1]), 2, 'ip')\n"
        "except BackendError as e: print('busy', e.hint)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("busy") and "url" in out.stdout
    held.close()


def test_kb_with_a_qdrant_dense_index(tmp_path: Path) -> None:
    methods = {
        "bm25": MethodConfig(kind="bm25"),
        "dense": MethodConfig(kind="dense", enabled=True, options={"embedder": "hashing", "index": "qdrant"}),
        "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "dense"]}),
    }
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    (docs / "bikes.txt").write_text("Oil the bicycle chain every 300 kilometres.", encoding="utf-8")
    with KnowledgeBase.open(str(tmp_path / "kb"), config=KBConfig(methods=methods)) as kb:
        kb.ingest([docs])
        assert (kb.layout.index_dir("dense") / "qdrant").is_dir()
        assert kb.search("bicycle chain oil", method="dense")[0].doc.title == "bikes"
        kb.delete("bikes.txt")
        assert all(h.doc.title != "bikes" for h in kb.search("bicycle chain oil", method="dense"))
    # a new KB object (as after a restart) opens the folder again
    with KnowledgeBase.open(str(tmp_path / "kb")) as kb:
        assert kb.search("tomatoes sunlight", method="hybrid")[0].doc.title == "Gardening guide"


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_remove_after_load_is_real(metric: str, tmp_path: Path) -> None:
    index = QdrantIndex(2, metric)  # type: ignore[arg-type]
    index.add(["a", "b", "c"], np.array([[1, 0], [0, 1], [1, 1]], np.float32))
    index.save(tmp_path)
    loaded = QdrantIndex.load(tmp_path, 2, metric)  # type: ignore[arg-type]
    loaded.remove(["c", "missing"])
    assert len(loaded) == 2
    loaded.close()
    again = QdrantIndex.load(tmp_path, 2, metric)  # type: ignore[arg-type]
    assert len(again) == 2 and {i for i, _, _ in again.search(np.ones((1, 2), np.float32), 5)[0]} == {
        "a",
        "b",
    }
    again.close()
