"""zhiku behind the interfaces RAG users already call: LangChain and LlamaIndex retrievers.

Each adapter module imports its framework at import time, and this package imports neither, so
``import zhiku`` stays light; install the one you use (``pip install 'zhiku[langchain]'``).
"""
