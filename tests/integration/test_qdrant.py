"""Qdrant (embedded local mode) as a KB's dense index, tested with the real qdrant-client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.helpers.corpus import EN_GUIDE

from zhiku.config import KBConfig, MethodConfig
from zhiku.errors import BackendError
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


def test_server_mode_sends_hnsw_settings_the_key_and_real_deletes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers.fake_qdrant_server import fake_qdrant

    monkeypatch.setenv("ZHIKU_QDRANT_API_KEY", "s3cret")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    ids = [f"c{i}" for i in range(40)]
    with fake_qdrant() as server:
        opts: dict[str, Any] = {
            "url": server.url,
            "collection": "kb1",
            "m": 12,
            "ef_construction": 80,
            "ef_search": 40,
        }
        index = QdrantIndex(8, "l2", **opts)
        index.add(ids, x)
        index.save(tmp_path)
        assert not (tmp_path / "qdrant").exists()  # the vectors live on the server
        assert "s3cret" not in (tmp_path / "qdrant.json").read_text() and "api_key" not in index.describe()
        loaded = QdrantIndex.load(tmp_path, 8, "l2", **opts)
        created = next(b for m, p, _, b in server.requests if m == "PUT" and p == "/collections/kb1")
        assert created["hnsw_config"] == {"m": 12, "ef_construct": 80}
        assert created["vectors"] == {"size": 8, "distance": "Euclid"}
        assert all(h.get("api-key") == "s3cret" for _, _, h, _ in server.requests)

        got = loaded.search(x[:3], 5)
        search = next(b for m, p, _, b in server.requests if p.endswith("/points/query/batch"))
        assert search["searches"][0]["params"]["hnsw_ef"] == 40
        assert [row[0][0] for row in got] == ids[:3] and all(abs(row[0][2]) < 1e-5 for row in got)
        exact = np.sqrt(((x[0] - x) ** 2).sum(1))
        np.testing.assert_allclose([d for _, _, d in got[0]], np.sort(exact)[:5], rtol=1e-4, atol=1e-4)

        loaded.remove(["c0", "c1"])
        assert len(loaded) == 38 and len(server.collections["kb1"].points) == 38
        assert loaded.search(x[:1], 1)[0][0][0] not in {"c0", "c1"}
        loaded.close()


def test_an_unreachable_server_says_what_to_check(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    index = QdrantIndex(2, "ip", url=f"http://127.0.0.1:{port}")
    with pytest.raises(BackendError, match="cannot connect to Qdrant"):
        index.save(tmp_path)
