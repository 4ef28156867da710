"""The fast BM25 query path ranks exactly as bm25s's own scoring plus a full sort does."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from zhiku.lexical import bm25_scores


def corpus(rng: np.random.Generator, docs: int, vocab: int) -> list[list[int]]:
    # Zipf-like word frequencies, as in text: a few words in most chunks, most words in few
    weights = 1.0 / np.arange(1, vocab + 1)
    weights /= weights.sum()
    return [list(rng.choice(vocab, size=int(rng.integers(1, 40)), p=weights)) for _ in range(docs)]


@pytest.mark.parametrize("variant", ["lucene", "robertson", "bm25+", "bm25l"])
def test_scores_and_top_k_equal_bm25s(variant: str) -> None:
    rng = np.random.default_rng(3)
    ids = corpus(rng, 3000, 400)
    vocab = {str(i): i for i in range(400)}
    model = bm25s.BM25(method=variant)
    model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    checked = 0
    for _ in range(200):
        query = [int(t) for t in rng.choice(400, size=int(rng.integers(1, 6)))]  # repeats too
        want = model.get_scores(query)
        got, touched = bm25_scores.score(model.scores, query, model.nonoccurrence_array)
        np.testing.assert_array_equal(got, want)
        for k in (1, 10, 5000):
            top = bm25_scores.top_k(got, min(k, len(ids)), touched)
            # the k best positive scores, best first, ties by row: a full stable sort's answer
            order = np.argsort(-want, kind="stable")
            expected = [int(i) for i in order[: min(k, len(ids))] if want[i] > 0]
            assert [int(i) for i in top] == expected
            checked += len(expected)
    assert checked > 1000  # the queries really matched chunks


def test_a_query_that_touches_nothing_ranks_nothing() -> None:
    model = bm25s.BM25()
    model.index(
        bm25s.tokenization.Tokenized(ids=[[0, 1], [1], [2]], vocab={"a": 0, "b": 1, "c": 2, "d": 3}),
        show_progress=False,
    )
    scores, touched = bm25_scores.score(model.scores, [3])
    assert len(bm25_scores.top_k(scores, 2, touched)) == 0 if touched else not touched
