"""zhiku's tokens as Milvus words, ranked by Milvus's BM25 function: one encoding and one schema,
shared by the BM25 index (``milvus_text.py``) and the words a Milvus vector collection keeps for a
hybrid search in one engine (``milvus.py``), so both rank the same documents alike.

Each token is written as the hex of its UTF-8 bytes, space-separated, under Milvus's ``standard``
tokenizer: that tokenizer would cut a Chinese word into characters but keeps a hex word whole, and
Milvus Lite refuses the ``whitespace`` tokenizer. Milvus never segments anything itself: the words
are the KB's (jieba with its dictionary, stop words, Traditional folding, stemmed English).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from zhiku.errors import BackendError

#: Milvus's VARCHAR limit, in bytes; a longer chunk keeps its first tokens (never reached by
#: zhiku's chunk sizes: ≈ 5,000 Chinese words)
MAX_TEXT = 65_535
#: full-text search (the BM25 function, a sparse BM25 index) arrived in Milvus 2.5
FULL_TEXT_SINCE = (2, 5)
TEXT_FIELD = "text"
SPARSE_FIELD = "sparse"


def encode(tokens: Iterable[str]) -> str:
    """Tokens as one space-separated string of hex words (one analyser word per token)."""
    out, size = [], 0
    for t in tokens:
        h = t.encode("utf-8").hex()
        if not h:
            continue
        size += len(h) + 1
        if size > MAX_TEXT:
            break
        out.append(h)
    return " ".join(out)


def full_text_missing(db: Any, uri: str) -> str:
    """Why the Milvus at ``uri`` cannot rank words ("" when it can), asked of the server."""
    version = str(db.get_server_version())
    m = re.search(r"(\d+)\.(\d+)", version)
    # the standalone server from PyPI says "v2.3.5-lite"; Milvus Lite 3 says "milvus_lite-3.2.2"
    if m and (int(m[1]), int(m[2])) < FULL_TEXT_SINCE:
        return f"Milvus at {uri} is version {version}: BM25 full-text search needs Milvus 2.5 or newer"
    return ""


def check_full_text(db: Any, uri: str) -> None:
    """Refuse a server older than full-text search, in one line."""
    why = full_text_missing(db, uri)
    if why:
        raise BackendError(
            why, "Upgrade the server, or keep this bm25 method in-process (remove index = 'milvus')"
        )


def add_word_fields(schema: Any) -> None:
    """The analysed ``text`` field and the ``sparse`` field Milvus's BM25 function fills from it."""
    from pymilvus import DataType, Function, FunctionType

    schema.add_field(
        TEXT_FIELD,
        DataType.VARCHAR,
        max_length=MAX_TEXT,
        enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field(SPARSE_FIELD, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=[TEXT_FIELD],
            output_field_names=[SPARSE_FIELD],
        )
    )


def add_word_index(params: Any, k1: float, b: float) -> None:
    """The sparse BM25 index over the words, with zhiku's k1 and b."""
    params.add_index(
        field_name=SPARSE_FIELD,
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"params": {"bm25_k1": k1, "bm25_b": b}},  # nested, or Lite drops them
    )


def bm25_score(distance: float, k1: float) -> float:
    """Milvus's BM25 as bm25s's ``lucene`` score: Milvus's is Lucene's times (k1 + 1), and Lite
    returns it negated."""
    return abs(float(distance)) / (k1 + 1)
