"""A LangChain retriever over a zhiku knowledge base.

    from zhiku.integrations.langchain import ZhikuRetriever
    retriever = ZhikuRetriever(kb="handbook", method="hybrid", k=4)
    docs = retriever.invoke("年假怎么申请？")      # or: await retriever.ainvoke(...)
    docs[0].metadata  # {"title", "path", "heading", "start", "end", "score", "method", ...}

Each ``Document`` is one chunk; its metadata is the citation, so a chain can say where an answer
came from. ``where`` keeps only documents whose path starts with it (or a ``zhiku.types.Where``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from zhiku.integrations.kb_search import KBSearcher, hit_metadata
from zhiku.types import Where


class ZhikuRetriever(BaseRetriever):
    """``kb``: a KB name, a KB folder, or an open ``KnowledgeBase``; ``method``: the KB's default
    when unset; ``k``: documents per query; ``where``: a document path prefix, or a ``Where``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kb: Any
    method: str | None = None
    k: int = Field(4, ge=1)
    where: str | Where | None = None
    home: Path | None = None
    _searcher: KBSearcher = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self._searcher = KBSearcher(self.kb, self.home)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self._searcher.search(query, self.k, self.method, self.where)
        return [
            Document(page_content=h.chunk.text if h.chunk else "", metadata=hit_metadata(h, rank))
            for rank, h in enumerate(hits, start=1)
        ]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        # zhiku searches are CPU work in-process: run them off the event loop, in a worker thread.
        return await asyncio.to_thread(
            self._get_relevant_documents, query, run_manager=run_manager.get_sync()
        )

    def close(self) -> None:
        """Close the KB if this retriever opened it (by name or folder)."""
        self._searcher.close()
