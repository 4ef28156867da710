"""One conformance suite for every embedder that runs here without a server."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from zhiku.embed.base import Embedder
from zhiku.embed.hashing import HashingEmbedder


def sbert() -> Embedder:
    from zhiku.embed.sbert import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def e5() -> Embedder:
    from zhiku.embed.e5 import E5Embedder

    return E5Embedder()


FACTORIES: dict[str, Callable[[], Embedder]] = {"hashing": HashingEmbedder, "sbert-minilm": sbert, "e5": e5}
TEXTS = [
    "Tomatoes need six hours of sunlight.",
    "Prune roses in late winter.",
    "番茄每天需要六小时日照。",
    "",
]


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def embedder(request: pytest.FixtureRequest) -> Embedder:
    return FACTORIES[request.param]()


def test_shape_dtype_and_norm(embedder: Embedder) -> None:
    v = embedder.embed(TEXTS)
    assert v.shape == (len(TEXTS), embedder.dim) and v.dtype == np.float32
    if embedder.normalized:
        norms = np.linalg.norm(v[:3], axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_deterministic_and_batch_independent(embedder: Embedder) -> None:
    a = embedder.embed(TEXTS)
    b = np.vstack([embedder.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_related_texts_are_closer(embedder: Embedder) -> None:
    q = embedder.embed_queries(["how many hours of sun do tomatoes need"])[0]
    d = embedder.embed(TEXTS[:2])
    assert d[0] @ q > d[1] @ q


def test_describe_names_the_model(embedder: Embedder) -> None:
    desc = embedder.describe()
    assert desc["dim"] == embedder.dim and desc["model"]
