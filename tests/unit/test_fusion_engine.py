"""Who fuses a hybrid (``retrieve/fusion.py``: ``fusing_engine``, ``one_engine``): Milvus in one
request only when asked and when the parts allow it; otherwise zhiku, with one line saying why."""

from __future__ import annotations

import pytest

from zhiku.retrieve.base import EngineSide
from zhiku.retrieve.fusion import AUTO_ENGINE, FusionPlan, HybridOptions, fusing_engine, one_engine

WORDS = EngineSide("milvus", None, "words")
VECTORS = EngineSide("milvus", None, "vectors")


def options(**kw: object) -> HybridOptions:
    return HybridOptions(**{"of": ["bm25", "dense"], **kw})  # type: ignore[arg-type]


def test_milvus_fuses_words_and_vectors_in_one_request_with_the_plans_ranker() -> None:
    sides = {"bm25": WORDS, "dense": VECTORS}
    # the plan lists the vectors first: the request still names which part gives the words
    plan = FusionPlan(["dense", "bm25"], [2.0, 1.0], "score", "minmax")
    request, note = one_engine(options(engine="milvus"), plan, sides, "hybrid")
    assert request is not None and not note
    assert (request.words, request.vectors, request.ranker) == ("bm25", "dense", "weighted")
    assert request.weights == (0.5, 1.0)  # in [0, 1] for Milvus, the ratio kept, words first
    rrf, _ = one_engine(
        options(engine="milvus", k_rrf=30), FusionPlan(["bm25", "dense"], None, "rrf", "minmax"), sides, "h"
    )
    assert rrf is not None and (rrf.ranker, rrf.k_rrf, rrf.weights) == ("rrf", 30, (1.0, 1.0))


def test_zhiku_fuses_when_asked_or_by_default() -> None:
    sides = {"bm25": WORDS, "dense": VECTORS}
    plan = FusionPlan(["bm25", "dense"], None, "rrf", "minmax")
    assert one_engine(options(engine="zhiku"), plan, sides, "hybrid") == (None, "")
    assert fusing_engine(options(), ["bm25", "dense"], sides) == (AUTO_ENGINE, "")


def test_a_weighted_rrf_is_fused_by_zhiku_for_milvus_rrf_has_no_weights() -> None:
    sides = {"bm25": WORDS, "dense": VECTORS}
    weighted = options(engine="milvus", fusion="rrf", weights=[1.0, 2.0])
    assert fusing_engine(weighted, ["bm25", "dense"], sides)[0] == "zhiku"
    plan = FusionPlan(["bm25", "dense"], [1.0, 2.0], "rrf", "minmax")  # e.g. by_language's weights
    request, note = one_engine(options(engine="milvus"), plan, sides, "hybrid")
    assert request is None and "takes no weights" in note


@pytest.mark.parametrize(
    ("sides", "parts", "why"),
    [
        ({"bm25": None, "dense": VECTORS}, ["bm25", "dense"], "both with index = 'milvus'"),
        (
            {"bm25": WORDS, "dense": VECTORS, "minilm": None},
            ["bm25", "dense", "minilm"],
            "bm25, dense, minilm",
        ),
        (
            {"bm25": EngineSide("milvus", "http://a:19530", "words"), "dense": VECTORS},
            ["bm25", "dense"],
            "two Milvus",
        ),
        (
            {"bm25": WORDS, "dense": EngineSide("milvus", None, "vectors", missing="version v2.3.5")},
            ["bm25", "dense"],
            "v2.3.5",
        ),
        (
            {"bm25": EngineSide("milvus", None, "words", k1=1.5), "dense": VECTORS},
            ["bm25", "dense"],
            "bm25_k1",
        ),
    ],
)
def test_where_milvus_cannot_fuse_zhiku_does_and_says_why_in_one_line(
    sides: dict[str, EngineSide | None], parts: list[str], why: str
) -> None:
    engine, reason = fusing_engine(options(of=parts, engine="milvus"), parts, sides)
    assert engine == "zhiku" and why in reason
    request, note = one_engine(
        options(of=parts, engine="milvus"), FusionPlan(parts, None, "rrf", "minmax"), sides, "hybrid"
    )
    assert request is None and note.startswith("hybrid: fused by zhiku, not Milvus: ") and "\n" not in note
