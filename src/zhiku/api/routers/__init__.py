"""One module per API resource: knowledge bases, documents, search, ask, eval, OpenAI, health."""
