"""The LlamaIndex retriever, run through the real llama-index-core over a KB the test builds.

The query engine runs with LlamaIndex's own MockLLM, and the sockets are shut for the whole test,
so it shows that nothing (NLTK data, tiktoken encodings, an LLM) is fetched from the network.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.small_kb import build_small_kb

from zhiku.service import KnowledgeBase


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def small_kb(tmp_path: Path, offline: None) -> Iterator[tuple[KnowledgeBase, Path]]:
    kb, docs = build_small_kb(tmp_path)
    yield kb, docs
    kb.close()


def test_nodes_carry_the_citation(small_kb: tuple[KnowledgeBase, Path]) -> None:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.schema import NodeWithScore

    from zhiku.integrations.llama_index import ZhikuRetriever

    kb, docs = small_kb
    retriever = ZhikuRetriever(kb, method="bm25", k=2)
    assert isinstance(retriever, BaseRetriever)
    got = retriever.retrieve("保险机构 赔偿 保险金 支付")
    hits = kb.search("保险机构 赔偿 保险金 支付", k=2, method="bm25")
    assert len(got) == 2 and all(isinstance(n, NodeWithScore) for n in got)
    assert [n.node.node_id for n in got] == [h.chunk_id for h in hits]
    assert [n.score for n in got] == pytest.approx([h.score for h in hits])
    meta = got[0].node.metadata
    assert meta["title"] == "示例农业保险办法" and meta["path"] == str(docs / "zh" / "农业保险办法.md")
    assert "第二章" in meta["heading"] and meta["method"] == "bm25"
    text = kb.catalog.document_text(meta["doc_id"])
    assert text is not None and text[meta["start"] : meta["end"]] == got[0].node.get_content()
    # async, and the where filter
    (first,) = asyncio.run(ZhikuRetriever(kb, method="bm25", k=1).aretrieve("年假 工龄"))
    assert first.node.metadata["title"] == "员工手册"
    only_en = ZhikuRetriever(kb, method="dense", k=3, where=str(docs / "en")).retrieve("保险 赔偿")
    assert only_en and all(n.node.metadata["path"].startswith(str(docs / "en")) for n in only_en)


def test_a_query_engine_answers_from_zhiku_nodes(small_kb: tuple[KnowledgeBase, Path]) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from zhiku.integrations.llama_index import ZhikuRetriever

    kb, docs = small_kb
    engine = RetrieverQueryEngine.from_args(ZhikuRetriever(kb, method="bm25", k=2), llm=MockLLM())
    response = engine.query("保险金什么时候支付？")
    assert [n.node.metadata["title"] for n in response.source_nodes][0] == "示例农业保险办法"
    # MockLLM answers with the prompt it was given: the passage and where it is from went in,
    # the offsets and scores (for code, not for the model) did not.
    prompt = str(response)
    assert "十日内" in prompt and f"path: {docs / 'zh' / '农业保险办法.md'}" in prompt
    assert "heading: " in prompt and "score: " not in prompt and "start: " not in prompt
