"""A KB whose dense index lives on a real Milvus standalone server (the scale-out path, end to end).

Skipped unless ZHIKU_MILVUS_SERVER=1 (``.ci/run`` sets it after ``make milvus-server``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.corpus import EN_GUIDE
from tests.helpers.milvus_server import ENABLED, SKIP_REASON, MilvusServer

from zhiku.config import KBConfig, MethodConfig
from zhiku.index.milvus import collection_prefix
from zhiku.service import KnowledgeBase

pytestmark = pytest.mark.skipif(not ENABLED, reason=SKIP_REASON)

BIKES = "Oil the bicycle chain every 300 kilometres and check the brake pads."


def config(uri: str) -> KBConfig:
    dense = {"embedder": "hashing", "dim": 64, "index": "milvus", "index_options": {"uri": uri}}
    return KBConfig(
        default_method="bm25",
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "dense": MethodConfig(kind="dense", enabled=True, options=dense),
        },
    )


def docs(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def live_collection(kb: KnowledgeBase) -> str:
    import json

    info = json.loads((kb.layout.index_dir("dense") / "milvus.json").read_text(encoding="utf-8"))
    return str(info["collection"])


def client(server: MilvusServer) -> Any:
    from pymilvus import MilvusClient  # type: ignore[import-untyped]

    return MilvusClient(server.uri)


def titles(kb: KnowledgeBase, query: str) -> list[str]:
    return [h.doc.title if h.doc else "" for h in kb.search(query, method="dense", k=5)]


def test_kb_on_a_milvus_server_end_to_end(milvus_server: MilvusServer, tmp_path: Path) -> None:
    folder = docs(tmp_path / "docs", **{"garden.md": EN_GUIDE, "bikes.txt": BIKES})
    root = tmp_path / "home" / "team-kb"
    with KnowledgeBase.open(str(root), config=config(milvus_server.uri)) as kb:
        kb.ingest([folder])
        assert not (kb.layout.index_dir("dense") / "milvus.db").exists()  # the server, not Lite
        assert titles(kb, "bicycle chain oil")[0] == "bikes"
        name = live_collection(kb)
        assert name.startswith("zk_team_kb_dense_") and name in client(milvus_server).list_collections()
        before = set(chunk_ids(kb))
        assert _ids_in(milvus_server, name) == before
        kb.delete(str(folder / "bikes.txt"))
        assert "bikes" not in titles(kb, "bicycle chain oil")
        deleted = before - set(chunk_ids(kb))
        assert deleted and not deleted & _ids_in(milvus_server, live_collection(kb))
    # kill -9 the server and start it again on the same data folder: what a KB sees afterwards is
    # what the server had made durable, and the deleted chunks must not come back.
    milvus_server.restart()
    with KnowledgeBase.open(str(root)) as kb:
        assert "bikes" not in titles(kb, "bicycle chain oil")
        assert titles(kb, "tomatoes sunlight")[0] == "Gardening guide"
        assert _ids_in(milvus_server, live_collection(kb)) == set(chunk_ids(kb))
        # staleness as for any index: a change without a build is reported, a build clears it
        (folder / "bikes.txt").write_text(BIKES, encoding="utf-8")
        kb.ingest([folder], build=False)
        dense = next(s for s in kb.status() if s.name == "dense")
        assert dense.built and not dense.fresh
        kb.build()
        dense = next(s for s in kb.status() if s.name == "dense")
        assert dense.fresh and titles(kb, "bicycle chain oil")[0] == "bikes"
        # three builds so far: the live collection, the one before it; older ones were dropped
        prefix = collection_prefix(kb.layout.index_dir("dense"), None)[0]
        mine = [c for c in client(milvus_server).list_collections() if c.startswith(prefix)]
        assert live_collection(kb) in mine and len(mine) <= 3


def chunk_ids(kb: KnowledgeBase) -> list[str]:
    return [cid for cid, *_ in kb.catalog.iter_corpus()]


def _ids_in(server: MilvusServer, collection: str) -> set[str]:
    rows = client(server).query(collection, filter='id != ""', output_fields=["id"], limit=16384)
    return {r["id"] for r in rows}


def test_kbs_sharing_one_server_never_touch_each_other(milvus_server: MilvusServer, tmp_path: Path) -> None:
    """Same KB name in two homes, and a Chinese name: three KBs, three sets of collections."""
    a = docs(tmp_path / "a", **{"bikes.txt": BIKES})
    b = docs(tmp_path / "b", **{"garden.md": EN_GUIDE})
    c = docs(tmp_path / "c", **{"笔记.txt": "番茄需要充足的阳光和水。 tomatoes need sunlight"})
    kbs = {
        "a": KnowledgeBase.open(str(tmp_path / "home1" / "notes"), config=config(milvus_server.uri)),
        "b": KnowledgeBase.open(str(tmp_path / "home2" / "notes"), config=config(milvus_server.uri)),
        "c": KnowledgeBase.open(str(tmp_path / "home2" / "笔记"), config=config(milvus_server.uri)),
    }
    try:
        for key, folder in (("a", a), ("b", b), ("c", c)):
            kbs[key].ingest([folder])
        names = {key: live_collection(kb) for key, kb in kbs.items()}
        assert len(set(names.values())) == 3
        assert names["c"].startswith("zk_")  # non-ASCII KB names map to a valid Milvus name
        for _ in range(2):  # rebuilding one KB (and dropping its old collections) leaves the others
            kbs["a"].build(force=True)
        present = set(client(milvus_server).list_collections())
        assert names["b"] in present and names["c"] in present
        for key, kb in kbs.items():  # each collection holds exactly its own KB's chunks
            assert _ids_in(milvus_server, live_collection(kb)) == set(chunk_ids(kb)), key
        assert set(titles(kbs["b"], "bicycle chain oil")) == {"Gardening guide"}
        assert set(titles(kbs["a"], "tomatoes sunlight")) == {"bikes"}
    finally:
        for kb in kbs.values():
            kb.close()


def test_a_second_writer_process_is_refused(milvus_server: MilvusServer, tmp_path: Path) -> None:
    """The KB folder's writer lock covers its Milvus collections: a second writer fails fast."""
    folder = docs(tmp_path / "docs", **{"bikes.txt": BIKES})
    root = tmp_path / "home" / "kb"
    with KnowledgeBase.open(str(root), config=config(milvus_server.uri)) as kb:
        kb.ingest([folder])
        before = live_collection(kb)
        with kb.layout.writer_lock():  # this process is writing; another one tries
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            other = subprocess.run(
                [sys.executable, "-m", "zhiku", "ingest", str(folder), "--kb", str(root)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert other.returncode != 0 and "being changed by another process" in other.stderr + other.stdout
        assert live_collection(kb) == before and before in client(milvus_server).list_collections()


def full_text_version(server: MilvusServer) -> tuple[bool, str]:
    """Whether the server has full-text search (Milvus ≥ 2.5), and its version, asked of the server."""
    from zhiku.index.milvus_text import FULL_TEXT_SINCE

    version = str(client(server).get_server_version())
    found = re.search(r"(\d+)\.(\d+)", version)
    return bool(found and (int(found[1]), int(found[2])) >= FULL_TEXT_SINCE), version


def bm25_config(uri: str) -> KBConfig:
    return KBConfig(
        default_method="bm25",
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "bm25m": MethodConfig(
                kind="bm25", enabled=True, options={"index": "milvus", "index_options": {"uri": uri}}
            ),
        },
    )


def test_bm25_on_the_server_or_one_line_where_it_has_no_full_text(
    milvus_server: MilvusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zhiku.cli.app import main

    supported, version = full_text_version(milvus_server)
    folder = docs(tmp_path / "docs", **{"garden.md": EN_GUIDE, "bikes.txt": BIKES})
    root = tmp_path / "kb"
    with KnowledgeBase.open(str(root), config=bm25_config(milvus_server.uri)) as kb:
        kb.ingest([folder], build=False)
        kb.build(["bm25"])
        chunks = kb.catalog.chunk_count()
    code = main(["build", "--kb", str(root), "--method", "bm25m"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    if supported:
        assert code == 0, err
        with KnowledgeBase.open(str(root)) as kb:
            local = [h.chunk_id for h in kb.search("bicycle chain oil", 5, "bm25")]
            assert [h.chunk_id for h in kb.search("bicycle chain oil", 5, "bm25m")] == local
    else:
        # the bundled 2.3.x server: one line naming the version and what to do; nothing else touched
        assert code != 0 and len(err) == 1 and version in err[0] and "2.5" in err[0], err
        with KnowledgeBase.open(str(root)) as kb:
            assert kb.catalog.chunk_count() == chunks
            assert kb.search("bicycle chain oil", 5, "bm25")[0].doc.title == "bikes"


def test_bm25_conformance_on_the_server(milvus_server: MilvusServer, tmp_path: Path) -> None:
    supported, version = full_text_version(milvus_server)
    if not supported:
        pytest.skip(f"full-text BM25 needs Milvus >= 2.5; this server reports {version}")
    with KnowledgeBase.open(str(tmp_path / "kb"), config=bm25_config(milvus_server.uri)) as kb:
        folder = docs(tmp_path / "docs", **{"garden.md": EN_GUIDE, "bikes.txt": BIKES})
        kb.ingest([folder])
        for q in ("bicycle chain oil", "tomatoes sunlight", "zzqxv"):
            assert [h.chunk_id for h in kb.search(q, 5, "bm25m")] == [
                h.chunk_id for h in kb.search(q, 5, "bm25")
            ]
        kb.delete(str(folder / "bikes.txt"))
        assert all(h.doc.title != "bikes" for h in kb.search("bicycle chain oil", 5, "bm25m"))


@pytest.mark.slow
def test_hybrid_in_one_engine_or_one_note_where_the_server_has_no_full_text(
    milvus_server: MilvusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """engine = "milvus" on the server: one hybrid_search request where it has full text; on the
    bundled 2.3.x server the dense collection keeps no words, and zhiku fuses, saying why once."""
    from zhiku.cli.app import main

    supported, version = full_text_version(milvus_server)
    uri = milvus_server.uri
    dense = {"embedder": "hashing", "dim": 64, "index": "milvus", "index_options": {"uri": uri}}
    # bm25 on the server only where it can be (a 2.3.x server refuses it): in-process otherwise
    bm25 = {"index": "milvus", "index_options": {"uri": uri}} if supported else {}
    hybrid = {"of": ["bm25", "dense"], "fusion": "score", "weights": [1.0, 2.0], "engine": "milvus"}
    cfg = KBConfig(
        default_method="hybrid",
        methods={
            "bm25": MethodConfig(kind="bm25", options=bm25),
            "dense": MethodConfig(kind="dense", enabled=True, options=dense),
            "hybrid": MethodConfig(kind="hybrid", options=hybrid),
        },
    )
    folder = docs(tmp_path / "docs", **{"garden.md": EN_GUIDE, "bikes.txt": BIKES})
    root = tmp_path / "kb"
    with KnowledgeBase.open(str(root), config=cfg) as kb:
        kb.ingest([folder])
        hits = kb.search("bicycle chain oil", 5)
        assert hits[0].doc is not None and hits[0].doc.title == "bikes"
        status = next(s for s in kb.status() if s.name == "hybrid")
        if supported:
            assert all(h.extra.get("fused_by") == "milvus" for h in hits) and not kb.notes
            assert status.fused_by == "milvus"
        else:
            (note,) = kb.notes
            assert "fused by zhiku" in note and version in note and "2.5" in note, note
            assert status.fused_by == "zhiku" and version in status.reason
    code = main(["search", "bicycle chain oil", "--kb", str(root)])
    out = capsys.readouterr()
    assert code == 0 and "bikes" in out.out and "Traceback" not in out.err
    if not supported:
        noted = [line for line in (out.out + out.err).splitlines() if "fused by zhiku" in line]
        assert len(noted) == 1 and version in noted[0], noted
