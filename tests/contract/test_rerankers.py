"""One conformance suite for every reranker kind, each on real parts:

- ``cross-encoder``: a tiny randomly initialised BERT cross-encoder saved to a temp folder and
  loaded through sentence-transformers (its scores are meaningless, so relevance is not checked);
- ``remote``: a loopback server speaking the Cohere/Jina/vLLM API and the TEI API;
- ``llm``: the KB generator's backend against the loopback LLM server, a scripted judge replying.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.rerank_llm import judge_reply
from tests.helpers.tiny_cross_encoder import build_tiny_cross_encoder
from tests.integration.fake_llm_server import FakeLLMServer
from tests.integration.fake_rerank_server import MODEL, FakeRerankServer

from zhiku.config import GeneratorConfig, RerankConfig
from zhiku.retrieve.rerank import make_reranker, rerankers
from zhiku.retrieve.rerank.base import Reranker
from zhiku.types import Hit

EN_Q = "how many hours of sunlight do tomatoes need"
EN = [
    "Prune roses in late winter, before new growth starts.",
    "Tomatoes need at least six hours of direct sunlight every day.",
    "Water the lawn in the early morning.",
    "Roses like sunlight too.",
]
ZH_Q = "保险金什么时候支付给被保险人"
ZH = [
    "在农业保险合同有效期内，合同当事人不得增加保险费。",
    "保险机构应当在与被保险人达成赔偿协议后十日内，将应赔偿的保险金支付给被保险人。",
    "公司实行弹性工作制，员工每天工作八小时。",
]

#: suite id -> (registered kind, whether its scores carry meaning)
CASES = {
    "cross-encoder": ("cross-encoder", False),
    "remote-cohere": ("remote", True),
    "remote-tei": ("remote", True),
    "llm-pointwise": ("llm", True),
    "llm-listwise": ("llm", True),
}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeRerankServer, FakeLLMServer]]:
    with FakeRerankServer() as rr, FakeLLMServer() as llm:
        llm.reply = judge_reply
        yield rr, llm


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce"), [EN_Q, ZH_Q, *EN, *ZH])


@pytest.fixture(scope="module", params=sorted(CASES))
def reranker(
    request: pytest.FixtureRequest, servers: tuple[FakeRerankServer, FakeLLMServer], tiny_model: Path
) -> Reranker:
    rr, llm = servers
    case = request.param
    generator = GeneratorConfig(kind="ollama", options={"model": "qwen2.5:7b", "base_url": llm.url})
    options: dict[str, object] = {
        "cross-encoder": {"model": str(tiny_model), "batch_size": 2, "max_length": 4096},
        "remote-cohere": {"api": "cohere", "base_url": rr.url, "model": MODEL, "batch_size": 3},
        "remote-tei": {"api": "tei", "base_url": rr.url, "batch_size": 3},
        "llm-pointwise": {"mode": "pointwise", "workers": 2},
        "llm-listwise": {"mode": "listwise", "window": 3, "step": 2},
    }[case]
    from zhiku.generate.answer import make_generator

    made = make_reranker(
        RerankConfig(kind=CASES[case][0], options=options), lambda: make_generator(generator)
    )
    assert made is not None and made.name == CASES[case][0]
    made.case = case  # type: ignore[attr-defined]
    return made


def meaningful(r: Reranker) -> bool:
    return CASES[r.case][1]  # type: ignore[attr-defined]


def hits_for(texts: list[str]) -> list[Hit]:
    return [Hit(f"c{i}", 1.0 - i / 10, "bm25", extra={"note": i}) for i in range(len(texts))]


def test_every_registered_kind_is_in_this_suite() -> None:
    assert set(rerankers.names()) <= {kind for kind, _ in CASES.values()}, "add the new kind to CASES"


def test_one_finite_float_per_passage(reranker: Reranker) -> None:
    for q, texts in ((EN_Q, EN), (ZH_Q, ZH)):
        scores = reranker.score(q, texts)
        assert len(scores) == len(texts)
        assert all(isinstance(s, float) and math.isfinite(s) for s in scores)


def test_empty_candidates(reranker: Reranker) -> None:
    assert reranker.score(EN_Q, []) == []
    assert reranker.rerank(EN_Q, [], []) == []
    assert reranker.rerank(EN_Q, [], [], top_n=5, threshold=0.0) == []


def test_deterministic(reranker: Reranker) -> None:
    assert reranker.score(ZH_Q, ZH) == reranker.score(ZH_Q, ZH)
    a = reranker.rerank(EN_Q, hits_for(EN), EN)
    assert [h.chunk_id for h in a] == [h.chunk_id for h in reranker.rerank(EN_Q, hits_for(EN), EN)]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rerank_orders_by_score_and_keeps_the_first_stage(reranker: Reranker, lang: str) -> None:
    q, texts = (EN_Q, EN) if lang == "en" else (ZH_Q, ZH)
    hits = hits_for(texts)
    scores = reranker.score(q, texts)
    out = reranker.rerank(q, hits, texts)
    assert sorted(h.chunk_id for h in out) == sorted(h.chunk_id for h in hits)
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)
    for h in out:
        i = int(h.chunk_id[1:])
        assert h.score == pytest.approx(scores[i])
        assert h.extra["first_rank"] == i + 1 and h.extra["first_score"] == hits[i].score
        assert h.extra["reranked"] is True and h.extra["note"] == i  # the first stage's extras stay
    if meaningful(reranker):
        assert out[0].chunk_id == "c1", "the passage that answers the question comes first"


def test_top_n_reranks_the_head_and_keeps_the_tail_in_order(reranker: Reranker) -> None:
    hits = hits_for(EN)
    out = reranker.rerank(EN_Q, hits, EN, top_n=2)
    assert len(out) == len(EN)
    assert {h.chunk_id for h in out[:2]} == {"c0", "c1"}
    assert all(h.extra["reranked"] for h in out[:2])
    assert [h.chunk_id for h in out[2:]] == ["c2", "c3"]
    assert all(h.extra["reranked"] is False for h in out[2:])
    assert [h.score for h in out[2:]] == [hits[2].score, hits[3].score]  # never judged: first-stage score
    if meaningful(reranker):
        assert out[0].chunk_id == "c1"


def test_threshold_drops_low_scores_and_the_unjudged_tail(reranker: Reranker) -> None:
    head = len(ZH) - 1
    scores = reranker.score(ZH_Q, ZH[:head])  # what rerank scores: the top_n head only
    cut = sorted(scores)[len(scores) // 2]  # the median: some above, some below
    out = reranker.rerank(ZH_Q, hits_for(ZH), ZH, top_n=head, threshold=cut)
    kept = [s for s in scores if s >= cut]
    assert len(out) == len(kept) and all(h.score >= cut for h in out)
    assert all(h.extra["reranked"] for h in out)


def test_mismatched_texts_are_refused(reranker: Reranker) -> None:
    from zhiku.errors import UsageError

    with pytest.raises(UsageError):
        reranker.rerank(EN_Q, hits_for(EN), EN[:2])


def test_long_passages_are_truncated_to_the_window(reranker: Reranker) -> None:
    # The tiny cross-encoder's window is 256 tokens, yet it is configured with max_length 4096.
    scores = reranker.score(ZH_Q, [ZH[1] * 40, ZH[0]])
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores)


def test_describe_names_the_kind(reranker: Reranker) -> None:
    assert reranker.describe().startswith(reranker.name)
    assert reranker.batch_size >= 1
