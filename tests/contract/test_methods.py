"""One conformance suite for every indexed retrieval method kind, on one tiny real KB.

Each kind is built through the KnowledgeBase facade (as a user would), then held to the same
contract: at most k hits, best first; ids are chunk ids of the catalog; an obvious query finds its
chunk; deleting a document removes it; an empty or unknown-word query returns [] quietly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.word_corpus import FAST_TRAINING, TARGET_QUERY, TARGET_SOURCE, TARGET_TEXT, topic_documents
from tests.integration.fake_llm_server import FakeLLMServer

from zhiku.config import KBConfig, MethodConfig
from zhiku.retrieve.base import methods
from zhiku.service import KnowledgeBase

#: the embedding server the remote kinds talk to: a loopback server speaking the Ollama and
#: OpenAI wire formats, so the real client code runs (its vectors come from the hashing embedder)
SERVER = "http://server.invalid"

#: options that make each kind fast and offline here (no model download, small training runs)
OPTIONS: dict[str, dict[str, Any]] = {
    "bm25": {},
    "dense": {"embedder": "hashing", "dim": 128},
    "remote": {"embedder": "ollama", "model": "bge-m3", "base_url": SERVER},
    # PromptEOL through a server's embedding endpoint (the local-model path: tests/integration)
    "prompt-llm": {
        "embedder": "openai",
        "model": "text-embedding-3-small",
        "base_url": SERVER + "/v1",
        "template": "eol",
    },
    "tfidf": {},
    "w2v-cbow": FAST_TRAINING,
    "w2v-sg": FAST_TRAINING,
    "d2v-dm": FAST_TRAINING,
    "d2v-dbow": FAST_TRAINING,
}


#: further backends of a kind, held to the same contract: (kind, options) under a test name
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # BM25 in Milvus full-text search (a Milvus Lite file in the index folder)
    "bm25@milvus": ("bm25", {"index": "milvus"}),
}


#: kinds that only know the corpus's words: a query of none of them has no evidence to rank by
VOCABULARY_KINDS = {"bm25", "tfidf", "w2v-cbow", "w2v-sg", "d2v-dm", "d2v-dbow"}


def indexed_kinds() -> list[str]:
    return [k for k in methods.names() if methods.get(k).indexed]


def test_every_indexed_kind_is_in_the_suite() -> None:
    assert set(indexed_kinds()) == set(OPTIONS), "add the new kind's test options to OPTIONS"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(dim=128) as s:
        yield s


def options_for(kind: str, server: FakeLLMServer) -> dict[str, Any]:
    opts = dict(VARIANTS[kind][1] if kind in VARIANTS else OPTIONS[kind])
    if "base_url" in opts:
        opts["base_url"] = opts["base_url"].replace(SERVER, server.url)
    return opts


@pytest.fixture(scope="module", params=sorted([*OPTIONS, *VARIANTS]))
def kb(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, server: FakeLLMServer
) -> Iterator[tuple[KnowledgeBase, str]]:
    case = request.param
    kind = VARIANTS[case][0] if case in VARIANTS else case
    root = tmp_path_factory.mktemp(case.replace("@", "-")) / "kb"
    opts = options_for(case, server)
    config = KBConfig(methods={"m": MethodConfig(kind=kind, enabled=True, options=opts)})
    with KnowledgeBase.open(str(root), config=config) as kb:
        kb.add_texts([*topic_documents(per_topic=3, sentences=12), (TARGET_SOURCE, "灯塔守则", TARGET_TEXT)])
        before = len(server.requests)
        yield kb, kind
        if kind in ("remote", "prompt-llm"):
            assert len(server.requests) > before, "the remote kinds must really call the server"


def target_ids(kb: KnowledgeBase) -> set[str]:
    (doc,) = [d for d in kb.documents() if d.source == TARGET_SOURCE]
    return {c.id for c in kb.chunks_of(doc.id)}


def test_hits_are_catalog_chunks_best_first(kb: tuple[KnowledgeBase, str]) -> None:
    base, _ = kb
    all_ids = {c.id for d in base.documents() for c in base.chunks_of(d.id)}
    for query in ("保险 理赔", "cat kitten milk", "劳动合同 加班费", TARGET_QUERY):
        for k in (1, 3, 50):
            hits = base.search(query, k, "m")
            assert len(hits) <= k
            assert {h.chunk_id for h in hits} <= all_ids
            assert len({h.chunk_id for h in hits}) == len(hits)
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True)
            assert all(h.method == "m" and h.chunk is not None for h in hits)


def test_an_obvious_query_finds_its_chunk(kb: tuple[KnowledgeBase, str]) -> None:
    base, _ = kb
    hits = base.search(TARGET_QUERY, 3, "m")
    assert target_ids(base) & {h.chunk_id for h in hits}


def test_an_empty_query_returns_nothing(kb: tuple[KnowledgeBase, str]) -> None:
    base, _ = kb
    assert base.ready_method("m").search("", 5) == []
    assert base.ready_method("m").search("  ", 5) == []


def test_an_unknown_word_query_returns_nothing(kb: tuple[KnowledgeBase, str]) -> None:
    base, kind = kb
    if kind not in VOCABULARY_KINDS:
        pytest.skip(f"{kind} embeds any text (no vocabulary): unknown words still have neighbours")
    assert base.ready_method("m").search("zzqxv 鑫鑫鑫", 5) == []  # no word of it occurs in the corpus


def test_batch_search_equals_single_searches(kb: tuple[KnowledgeBase, str]) -> None:
    base, _ = kb
    queries = ["保险 理赔", "zzqxv", TARGET_QUERY]
    batch = base.search_many(queries, 5, "m")
    assert [[h.chunk_id for h in hits] for hits in batch] == [
        [h.chunk_id for h in base.search(q, 5, "m")] for q in queries
    ]


def test_deleting_a_document_removes_its_chunks(kb: tuple[KnowledgeBase, str], tmp_path: Path) -> None:
    base, _ = kb
    gone = target_ids(base)
    base.delete(TARGET_SOURCE)
    try:
        hits = base.search(TARGET_QUERY + " 保险", 50, "m")
        assert not gone & {h.chunk_id for h in hits}
        assert all(s.fresh for s in base.status() if s.name == "m")
    finally:
        base.add_texts([(TARGET_SOURCE, "灯塔守则", TARGET_TEXT)])  # put it back for the other tests
