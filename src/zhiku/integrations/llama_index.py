"""A LlamaIndex retriever over a zhiku knowledge base.

    from llama_index.core.query_engine import RetrieverQueryEngine
    from zhiku.integrations.llama_index import ZhikuRetriever
    retriever = ZhikuRetriever(kb="handbook", method="hybrid", k=4)
    nodes = retriever.retrieve("年假怎么申请？")   # NodeWithScore, metadata = the citation
    engine = RetrieverQueryEngine.from_args(retriever, llm=my_llm)

Offline: llama-index-core ships the NLTK stop words and the tiktoken encodings it uses (it points
NLTK_DATA-style lookups and TIKTOKEN_CACHE_DIR at its own ``_static`` folder), so neither this
adapter nor a query engine over it downloads anything; only the LLM you pass talks to a server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from zhiku.integrations.kb_search import LLM_KEYS, KBSearcher, hit_metadata
from zhiku.service import KnowledgeBase
from zhiku.types import Where


class ZhikuRetriever(BaseRetriever):
    """``kb``: a KB name, a KB folder, or an open ``KnowledgeBase``; ``method``: the KB's default
    when unset; ``k``: nodes per query; ``where``: a document path prefix, or a ``Where``."""

    def __init__(
        self,
        kb: str | Path | KnowledgeBase,
        method: str | None = None,
        k: int = 4,
        where: str | Where | None = None,
        home: Path | None = None,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(callback_manager=callback_manager, **kwargs)
        self.method, self.k, self.where = method, k, where
        self._searcher = KBSearcher(kb, home)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._searcher.search(query_bundle.query_str, self.k, self.method, self.where)
        out = []
        for rank, h in enumerate(hits, start=1):
            meta = hit_metadata(h, rank)
            node = TextNode(
                id_=h.chunk_id,
                text=h.chunk.text if h.chunk else "",
                metadata=meta,
                # The prompt gets where a passage is from, not offsets and scores.
                excluded_llm_metadata_keys=[key for key in meta if key not in LLM_KEYS],
                excluded_embed_metadata_keys=list(meta),
            )
            out.append(NodeWithScore(node=node, score=h.score))
        return out

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # zhiku searches are CPU work in-process: run them off the event loop, in a worker thread.
        return await asyncio.to_thread(self._retrieve, query_bundle)

    def close(self) -> None:
        """Close the KB if this retriever opened it (by name or folder)."""
        self._searcher.close()
