"""The streamed dense build: vectors written to embeddings.npy as produced, the last build's reused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import zhiku.index.flat  # noqa: F401
from zhiku.embed.hashing import HashingEmbedder
from zhiku.index.base import indexes
from zhiku.retrieve import vector_build
from zhiku.retrieve.base import Corpus
from zhiku.text.token_rows import JoinedTokens


class Counting(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=32)
        self.seen = 0

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += len(texts)
        return super().embed_batch(texts)


def corpus(texts: list[str]) -> Corpus:
    hashes = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    return Corpus(
        [f"c{i}" for i in range(len(texts))],
        texts,
        ["T"] * len(texts),
        hashes,
        JoinedTokens([""] * len(texts)),
        "fp",
        "en",
    )


def build(c: Corpus, out: Path, previous: Path | None, emb: Counting) -> np.ndarray:
    out.mkdir()
    matrix, _ = vector_build.embed_to_file(c, emb, previous, out / "embeddings.npy")
    (out / "embedding_hashes.json").write_text(json.dumps(c.text_hashes))
    (out / "embedder.json").write_text(json.dumps(emb.describe(), sort_keys=True))
    return np.asarray(matrix)


def test_rows_match_one_shot_embedding_and_only_new_text_is_embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_build, "BATCH", 3)  # several batches, one partly reused
    texts = [f"chunk number {i} about topic {i % 3}" for i in range(8)]
    emb = Counting()
    first = build(corpus(texts), tmp_path / "a", None, emb)
    expected = HashingEmbedder(dim=32).embed([f"T\n{t}" for t in texts])
    np.testing.assert_allclose(first, expected, rtol=1e-6)
    assert emb.seen == 8
    texts[4] = "a changed chunk"
    texts.append("a new chunk")
    second = build(corpus(texts), tmp_path / "b", tmp_path / "a", emb)
    assert emb.seen == 8 + 2  # only the changed and the new chunk
    np.testing.assert_allclose(second, HashingEmbedder(dim=32).embed([f"T\n{t}" for t in texts]), rtol=1e-6)
    index = indexes.get("flat")(32, "cosine")
    vector_build.fill_index(
        index, [f"c{i}" for i in range(len(texts))], np.load(tmp_path / "b" / "embeddings.npy", mmap_mode="r")
    )
    assert len(index) == len(texts) and index.search(second[4:5], 1)[0][0][0] == "c4"


def test_an_empty_corpus_writes_an_empty_matrix(tmp_path: Path) -> None:
    assert build(corpus([]), tmp_path / "a", None, Counting()).shape == (0, 32)
