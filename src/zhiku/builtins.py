"""Every built-in backend module, listed once, by concept.

A registry imports the modules of its concept the first time a name is looked up (see
``zhiku.registry``), and each module registers its backends on import, the same way a plugin of the
``zhiku.plugins`` entry-point group does. Adding a backend = one file + one line here. Importing
this module is free: it holds names only.
"""

from __future__ import annotations

BUILTINS: dict[str, tuple[str, ...]] = {
    "method": (
        "zhiku.retrieve.methods.bm25",
        "zhiku.retrieve.methods.tfidf",
        "zhiku.retrieve.methods.vector",
        "zhiku.retrieve.methods.remote",
        "zhiku.retrieve.methods.corpus_vectors",
        "zhiku.retrieve.methods.hybrid",
        "zhiku.retrieve.methods.expand",
        "zhiku.retrieve.methods.rag_fusion",
        "zhiku.retrieve.methods.adapted",
        "zhiku.retrieve.methods.routed",
    ),
    "embedder": (
        "zhiku.embed.hashing",
        "zhiku.embed.sbert",
        "zhiku.embed.e5",
        "zhiku.embed.remote",
        "zhiku.embed.prompt_llm",
        "zhiku.embed.word2vec",
        "zhiku.embed.doc2vec",
    ),
    "index": (
        "zhiku.index.flat",
        "zhiku.index.faiss",
        "zhiku.index.milvus",
        "zhiku.index.qdrant",
    ),
    "generator": (
        "zhiku.generate.extractive",
        "zhiku.generate.ollama",
        "zhiku.generate.openai_compat",
        "zhiku.generate.local",
    ),
    "loader": (
        "zhiku.ingest.loaders.text",
        "zhiku.ingest.loaders.markdown",
        "zhiku.ingest.loaders.html",
        "zhiku.ingest.loaders.pdf",
        "zhiku.ingest.loaders.docx",
        "zhiku.ingest.loaders.xlsx",
        "zhiku.ingest.loaders.table_text",
        "zhiku.ingest.loaders.pptx",
        "zhiku.ingest.loaders.epub",
        "zhiku.ingest.loaders.jsonl",
        "zhiku.ingest.loaders.image",
    ),
    "reranker": (
        "zhiku.retrieve.rerank.cross_encoder",
        "zhiku.retrieve.rerank.remote",
        "zhiku.retrieve.rerank.llm",
    ),
}
