"""Hybrid in one engine (real Milvus Lite files): bm25 and a dense method both with
``index = "milvus"``, fused by Milvus in one ``hybrid_search`` request or by zhiku; deletes and
re-ingests reach the words the dense collection keeps; ``status`` says who fuses; and where Milvus
cannot fuse (another zhiku's collection, other BM25 settings, a Milvus that does not answer) one
line says so, zhiku fuses, and nothing else is touched."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.word_corpus import TARGET_QUERY, TARGET_SOURCE, TARGET_TEXT, topic_documents

from zhiku.cli.app import main
from zhiku.config import KBConfig, MethodConfig
from zhiku.index.milvus import release_local
from zhiku.index.milvus_words import encode
from zhiku.service import KnowledgeBase

QUERIES = ["保险 理赔", "劳动合同 加班费", "cat kitten milk", TARGET_QUERY]


def config(
    engine: str = "milvus", fusion: str = "score", bm25: dict[str, Any] | None = None, **dense_index: Any
) -> KBConfig:
    dense = {"embedder": "hashing", "dim": 64, "index": "milvus", "index_options": dense_index}
    weights = [1.0, 2.0] if fusion == "score" else [1.0, 1.0]
    return KBConfig(
        default_method="hybrid",
        methods={
            "bm25": MethodConfig(kind="bm25", enabled=True, options={"index": "milvus", **(bm25 or {})}),
            "dense": MethodConfig(kind="dense", enabled=True, options=dense),
            "hybrid": MethodConfig(
                kind="hybrid",
                # Milvus's RRFRanker takes no weights: equal ones for RRF
                options={"of": ["bm25", "dense"], "fusion": fusion, "weights": weights, "engine": engine},
            ),
        },
    )


def documents() -> list[tuple[str, str, str]]:
    return [*topic_documents(per_topic=3, sentences=12), (TARGET_SOURCE, "灯塔守则", TARGET_TEXT)]


def titles(kb: KnowledgeBase, query: str, method: str = "hybrid") -> list[str]:
    return [h.doc.title if h.doc else "" for h in kb.search(query, 5, method)]


def rows_in_dense(root: Path) -> dict[str, str]:
    """chunk id -> the words the dense collection keeps, read from its Lite file (KB closed)."""
    from pymilvus import MilvusClient

    index = root / "indexes" / "dense"
    info = json.loads((index / "milvus.json").read_text(encoding="utf-8"))
    path = str(index.resolve() / "milvus.db")
    db = MilvusClient(path)
    try:
        db.load_collection(info["collection"])
        rows = db.query(info["collection"], filter='id != ""', output_fields=["id", "text"], limit=16384)
    finally:
        db.close()
        release_local(path)
    return {r["id"]: r["text"] for r in rows}


@pytest.mark.parametrize("fusion", ["score", "rrf"])
def test_milvus_fuses_in_one_request_and_finds_the_passage(tmp_path: Path, fusion: str) -> None:
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config(fusion=fusion)) as kb:
        kb.add_texts(documents())
        hits = kb.search(TARGET_QUERY, 5)
        assert hits[0].doc is not None and hits[0].doc.title == "灯塔守则"
        assert all(h.extra.get("fused_by") == "milvus" for h in hits) and not kb.notes
        for q in QUERIES:  # every hit is a chunk of the KB, best first
            scores = [h.score for h in kb.search(q, 5)]
            assert scores and scores == sorted(scores, reverse=True), q


def test_the_dense_collection_keeps_the_kb_words(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    with KnowledgeBase.open(str(root), config=config()) as kb:
        kb.add_texts(documents())
        corpus = kb.corpus()
        words = {cid: encode(t) for cid, t in zip(corpus.ids, corpus.tokens, strict=True)}
    assert rows_in_dense(root) == words and all(words.values())


def test_delete_really_deletes_and_reingest_comes_back(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    with KnowledgeBase.open(str(root), config=config()) as kb:
        kb.add_texts(documents())
        (doc,) = [d for d in kb.documents() if d.source == TARGET_SOURCE]
        gone = {c.id for c in kb.chunks_of(doc.id)}
        kb.delete(TARGET_SOURCE)
        assert "灯塔守则" not in titles(kb, TARGET_QUERY)
        left = {h.chunk_id for h in kb.search(TARGET_QUERY, 50)}
        assert left and not gone & left
    stored = rows_in_dense(root)
    assert not gone & set(stored) and len(stored) > 0  # gone from Milvus itself, not filtered out
    with KnowledgeBase.open(str(root)) as kb:  # a new process loads the collection again
        kb.add_texts([(TARGET_SOURCE, "灯塔守则", TARGET_TEXT)])
        assert titles(kb, TARGET_QUERY)[0] == "灯塔守则"
        assert all(s.fresh for s in kb.status())


def test_engine_zhiku_and_milvus_both_answer(tmp_path: Path) -> None:
    root = str(tmp_path / "kb")
    with KnowledgeBase.open(root, config=config(engine="milvus")) as kb:
        kb.add_texts(documents())
        milvus = {q: titles(kb, q) for q in QUERIES}
    with KnowledgeBase.open(root, config=config(engine="zhiku")) as kb:
        hits = kb.search(TARGET_QUERY, 5)
        assert all("fused_by" not in h.extra and h.extra.get("ranks") for h in hits) and not kb.notes
        for q in QUERIES:  # the same KB, two fusers: both find the topic's documents
            assert titles(kb, q)[0] == milvus[q][0], q


def status_line(root: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["status", "--kb", root]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("hybrid")]
    return line


def test_status_says_who_fuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "kb")
    with KnowledgeBase.open(root, config=config(engine="milvus")) as kb:
        kb.add_texts(documents())
        assert next(s for s in kb.status() if s.name == "hybrid").fused_by == "milvus"
    assert "fuses bm25, dense, fused by milvus" in status_line(root, capsys)
    with KnowledgeBase.open(root, config=config(engine="auto")) as kb:
        assert next(s for s in kb.status() if s.name == "hybrid").fused_by == "zhiku"
    assert "fused by zhiku" in status_line(root, capsys)


def test_other_bm25_settings_fall_back_to_zhiku_with_one_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "kb")
    with KnowledgeBase.open(root, config=config(bm25={"k1": 1.5})) as kb:
        kb.add_texts(documents())
        hits = kb.search(TARGET_QUERY, 5)
        assert hits[0].doc is not None and hits[0].doc.title == "灯塔守则"
        assert all("fused_by" not in h.extra for h in hits)
        (note,) = kb.notes
        assert "fused by zhiku" in note and "bm25_k1" in note and "\n" not in note
        status = next(s for s in kb.status() if s.name == "hybrid")
        assert status.fused_by == "zhiku" and "bm25_k1" in status.reason
    assert main(["search", TARGET_QUERY, "--kb", root]) == 0
    out = capsys.readouterr()
    assert "灯塔守则" in out.out and "Traceback" not in out.err
    assert len([ln for ln in (out.out + out.err).splitlines() if "fused by zhiku" in ln]) == 1


def test_a_collection_of_another_zhiku_falls_back_with_one_note(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    with KnowledgeBase.open(str(root), config=config()) as kb:
        kb.add_texts(documents())
        expected = [h.chunk_id for h in kb.search(TARGET_QUERY, 5, "bm25")]
    # the dense collection of a zhiku that kept no words beside the vectors
    info_file = root / "indexes" / "dense" / "milvus.json"
    info = json.loads(info_file.read_text(encoding="utf-8"))
    info_file.write_text(json.dumps({k: info[k] for k in ("uri", "collection", "count")}), encoding="utf-8")
    with KnowledgeBase.open(str(root)) as kb:
        hits = kb.search(TARGET_QUERY, 5)
        assert hits[0].doc is not None and hits[0].doc.title == "灯塔守则"
        (note,) = kb.notes
        assert "kept no words" in note and "fused by zhiku" in note
        assert [h.chunk_id for h in kb.search(TARGET_QUERY, 5, "bm25")] == expected  # untouched
        kb.build(["dense"], force=True)  # a rebuild keeps the words: Milvus fuses again
        assert all(h.extra.get("fused_by") == "milvus" for h in kb.search(TARGET_QUERY, 5))
        assert not kb.notes


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_milvus_that_does_not_answer_is_one_line_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "kb"
    uri = f"http://127.0.0.1:{_closed_port()}"
    cfg = config(bm25={"index_options": {"uri": uri}}, uri=uri)
    methods = {**cfg.methods, "local": MethodConfig(kind="bm25", enabled=True)}
    with KnowledgeBase.open(str(root), config=cfg.model_copy(update={"methods": methods})) as kb:
        kb.add_texts(documents(), build=False)
        kb.build(["local"])
        chunks, before = kb.catalog.chunk_count(), kb.search(TARGET_QUERY, 5, "local")
    code = main(["build", "--kb", str(root), "--method", "dense"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "error" in line]
    assert code != 0 and len(err) == 1 and err[0].startswith("error: ") and uri in err[0], err
    code = main(["search", TARGET_QUERY, "--kb", str(root), "--method", "hybrid"])
    out = capsys.readouterr()
    err = [line for line in out.err.splitlines() if line.strip()]
    assert code != 0 and len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in out.err, err
    with KnowledgeBase.open(str(root)) as kb:
        assert kb.catalog.chunk_count() == chunks
        assert [h.chunk_id for h in kb.search(TARGET_QUERY, 5, "local")] == [h.chunk_id for h in before]
