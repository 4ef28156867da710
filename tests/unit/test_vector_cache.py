"""Per-chunk vectors survive rebuilds and interrupted builds: only what is new is embedded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from zhiku.config import KBConfig, MethodConfig
from zhiku.embed.hashing import HashingEmbedder
from zhiku.retrieve.methods import vector
from zhiku.service import KnowledgeBase


class Interrupt(KeyboardInterrupt):
    pass


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Texts embedded so far; set ``fail_after`` to interrupt a build after that many."""
    seen = [0, 10**9]  # texts embedded, fail after this many
    real = HashingEmbedder.embed_batch

    def embed_batch(self: HashingEmbedder, texts: Sequence[str]) -> np.ndarray:
        if seen[0] + len(texts) > seen[1]:
            raise Interrupt("Ctrl-C")
        seen[0] += len(texts)
        return real(self, texts)

    monkeypatch.setattr(HashingEmbedder, "embed_batch", embed_batch)
    monkeypatch.setattr(vector, "CACHE_FLUSH", 4)
    return seen


def config() -> KBConfig:
    opts = {"embedder": "hashing", "dim": 32, "batch_size": 2}
    return KBConfig(methods={"dense": MethodConfig(kind="dense", enabled=True, options=opts)})


def docs(n: int, start: int = 0) -> list[tuple[str, str, str]]:
    return [
        (f"d{i}.md", f"d{i}", f"第{i}号文件讲的是主题{i}，内容各不相同。") for i in range(start, start + n)
    ]


def test_only_new_chunks_are_embedded_and_an_interrupted_build_resumes(
    tmp_path: Path, counted: list[int]
) -> None:
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config()) as kb:
        kb.add_texts(docs(10))
        assert counted[0] == 10
        kb.add_texts(docs(2, start=10))  # an ingest of two more documents
        assert counted[0] == 12
        kb.add_texts(docs(12, start=12), build=False)
        counted[1] = counted[0] + 8  # the next build dies after 8 new texts (two cache flushes)
        with pytest.raises(Interrupt):
            kb.build()
        assert not kb.method_status("dense").fresh
        before = counted[0]
        counted[1] = 10**9
        kb.build()
        assert counted[0] - before == 4  # the 8 embedded before the interruption were kept
        assert kb.method_status("dense").fresh
        # Deleting a document and rebuilding embeds nothing and keeps the cache to the corpus.
        kb.delete("d3.md")
        assert counted[0] - before == 4
        ids = {h.doc.source for h in kb.search("第20号文件讲的是主题20", 1, "dense") if h.doc}
        assert ids == {"d20.md"}
    shards = list((tmp_path / "kb" / "cache" / "vectors").rglob("*.json"))
    assert len(shards) == 1


def test_chunks_with_the_same_text_are_embedded_once_and_each_gets_the_vector(
    tmp_path: Path, counted: list[int]
) -> None:
    # Two documents with the same title and text give chunks with one text hash: one embedding,
    # copied to both rows of the matrix (the build fills one preallocated matrix in place).
    same = "同一段文字出现在两个文件里，内容完全一样。"
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config()) as kb:
        kb.add_texts([("a.md", "同名", same), ("b.md", "同名", same), ("c.md", "另一个", "别的内容。")])
        assert counted[0] == 2
        matrix = np.load(tmp_path / "kb" / "indexes" / "dense" / "embeddings.npy")
        assert matrix.shape[0] == 3 and not (matrix == 0).all(axis=1).any()
        hits = kb.search(same, 3, "dense")
        assert len(hits) == 3 and hits[0].score == pytest.approx(hits[1].score)
