"""The compact token rows a build holds give bm25s the same index as plain lists would."""

from __future__ import annotations

import random

import numpy as np

from zhiku.text.token_rows import JoinedTokens, TokenIdRows


def test_joined_tokens_read_like_lists() -> None:
    rows = JoinedTokens(["a b c", "", "数据 检索"])
    assert len(rows) == 3 and rows[0] == ["a", "b", "c"] and rows[1] == [] and rows[-1] == ["数据", "检索"]
    assert list(rows) == [["a", "b", "c"], [], ["数据", "检索"]] and rows[1:] == [[], ["数据", "检索"]]


def test_token_id_rows_round_trip_and_empty_rows() -> None:
    vocab: dict[str, int] = {}
    rows = TokenIdRows.build([["x", "y", "x"], [], ["z"]], vocab, empty="\x00", chunk=2)
    assert vocab == {"x": 0, "y": 1, "\x00": 2, "z": 3}
    assert (
        list(rows) == [[0, 1, 0], [2], [3]]
        and rows[1] == [2]
        and rows[-1] == [3]
        and rows[:2] == [[0, 1, 0], [2]]
    )
    assert rows.flat.dtype == np.int32


def test_bm25s_scores_equal_those_from_lists() -> None:
    import bm25s

    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    docs = [[rng.choice(words) for _ in range(rng.randint(0, 40))] for _ in range(500)]
    vocab_a: dict[str, int] = {}
    lists = [
        [vocab_a.setdefault(t, len(vocab_a)) for t in d] or [vocab_a.setdefault("\x00", len(vocab_a))]
        for d in docs
    ]
    vocab_b: dict[str, int] = {}
    compact = TokenIdRows.build(docs, vocab_b, empty="\x00", chunk=64)
    assert vocab_a == vocab_b
    for variant in ("lucene", "bm25+"):
        a, b = bm25s.BM25(method=variant), bm25s.BM25(method=variant)
        a.index(bm25s.tokenization.Tokenized(ids=lists, vocab=vocab_a), show_progress=False)
        b.index(bm25s.tokenization.Tokenized(ids=compact, vocab=vocab_b), show_progress=False)
        for q in (["w1", "w2"], ["w7"], ["w299", "w3", "w3"]):
            ids = [vocab_a[t] for t in q if t in vocab_a]
            np.testing.assert_array_equal(a.get_scores(ids), b.get_scores(ids))
