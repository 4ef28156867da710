"""BM25 scores read from bm25s's saved index with numpy alone equal bm25s's own, bit for bit."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from zhiku.retrieve.bm25_scores import SavedScores


@pytest.mark.parametrize("variant", ["lucene", "robertson", "atire", "bm25l", "bm25+"])
def test_saved_scores_equal_bm25s_own(tmp_path: Path, variant: str) -> None:
    import bm25s

    rng = random.Random(7)
    words = [f"w{i}" for i in range(300)]
    # Zipf-like: a few common words (long posting lists) and many rare ones
    corpus = [
        [rng.choice(words[: rng.choice((10, 60, 300))]) for _ in range(rng.randint(1, 80))]
        for _ in range(500)
    ]
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in corpus]
    known = len(vocab)  # bm25s adds an entry of its own to the vocabulary
    model = bm25s.BM25(method=variant)
    model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    model.save(str(tmp_path), show_progress=False)
    theirs = bm25s.BM25.load(str(tmp_path), mmap=True, load_vocab=False, show_progress=False)
    ours = SavedScores.load(tmp_path)
    for _ in range(200):
        query = [rng.randrange(known) for _ in range(rng.randint(1, 12))]  # repeats included
        expected = theirs.get_scores(query)
        got = ours.get_scores(query)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), query
    assert np.array_equal(ours.get_scores([]), theirs.get_scores_from_ids([]))
