"""The LangChain retriever, run through the real langchain-core over a KB the test builds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from tests.helpers.small_kb import build_small_kb

from zhiku.integrations.langchain import ZhikuRetriever
from zhiku.service import KnowledgeBase


@pytest.fixture
def small_kb(tmp_path: Path) -> Iterator[tuple[KnowledgeBase, Path]]:
    kb, docs = build_small_kb(tmp_path)
    yield kb, docs
    kb.close()


def test_documents_carry_the_citation(small_kb: tuple[KnowledgeBase, Path]) -> None:
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    kb, docs = small_kb
    retriever = ZhikuRetriever(kb=kb, method="bm25", k=2)
    assert isinstance(retriever, BaseRetriever)
    got = retriever.invoke("保险机构 赔偿 保险金 支付")
    hits = kb.search("保险机构 赔偿 保险金 支付", k=2, method="bm25")
    assert len(got) == len(hits) == 2 and all(isinstance(d, Document) for d in got)
    top, meta = got[0], got[0].metadata
    assert meta["chunk_id"] == hits[0].chunk_id and meta["score"] == pytest.approx(hits[0].score)
    assert meta["method"] == "bm25" and meta["title"] == "示例农业保险办法"
    assert meta["path"] == str(docs / "zh" / "农业保险办法.md")
    assert "第二章" in meta["heading"] and "十日内" in top.page_content
    # the offsets point at the passage in the document's stored text
    text = kb.catalog.document_text(meta["doc_id"])
    assert text is not None and text[meta["start"] : meta["end"]] == top.page_content


def test_async_matches_sync_and_opens_a_kb_by_folder(small_kb: tuple[KnowledgeBase, Path]) -> None:
    kb, _ = small_kb
    retriever = ZhikuRetriever(kb=kb.layout.root, k=3)  # a folder: the retriever opens the KB itself
    sync = retriever.invoke("年假 工龄")
    both = asyncio.run(_twice(retriever, "年假 工龄"))
    assert [d.metadata["chunk_id"] for d in sync] == [d.metadata["chunk_id"] for d in both[0]]
    assert both[0] == both[1] and sync[0].metadata["title"] == "员工手册"
    retriever.close()


async def _twice(retriever: ZhikuRetriever, query: str) -> list[list[Document]]:
    return list(await asyncio.gather(retriever.ainvoke(query), retriever.ainvoke(query)))


def test_where_keeps_documents_under_a_path(small_kb: tuple[KnowledgeBase, Path]) -> None:
    kb, docs = small_kb
    # dense (hashing) ranks every chunk, so an unfiltered top 3 has Chinese chunks in it
    unfiltered = ZhikuRetriever(kb=kb, method="dense", k=3).invoke("保险 赔偿")
    assert any("/zh/" in d.metadata["path"] for d in unfiltered)
    only_en = ZhikuRetriever(kb=kb, method="dense", k=3, where=str(docs / "en") + "/").invoke("保险 赔偿")
    assert only_en and all(d.metadata["path"].startswith(str(docs / "en")) for d in only_en)
    assert ZhikuRetriever(kb=kb, method="dense", k=3, where=str(docs / "nowhere")).invoke("保险") == []


def test_a_missing_kb_says_how_to_create_it(tmp_path: Path) -> None:
    from zhiku.errors import NotFoundError

    with pytest.raises(NotFoundError, match="zhiku ingest"):
        ZhikuRetriever(kb="no-such-kb", k=4)
