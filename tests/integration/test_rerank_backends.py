"""Rerank backends on their failure paths: the remote APIs against a loopback server, the LLM judge's
parsers and cache against the loopback LLM server, a missing cross-encoder folder."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.rerank_llm import judge_reply
from tests.integration.fake_llm_server import FakeLLMServer, Step
from tests.integration.fake_rerank_server import MODEL, FakeRerankServer

from zhiku.config import GeneratorConfig, RerankConfig
from zhiku.errors import BackendError, ConfigError, NotFoundError, UnknownNameError, UsageError
from zhiku.generate.answer import make_generator
from zhiku.retrieve.rerank import make_reranker, rerank_config
from zhiku.retrieve.rerank.base import Reranker
from zhiku.retrieve.rerank.llm import parse_ranking, parse_score

KEY = "sk-rerank-secret-12345"
Q = "保险金什么时候支付"
DOCS = ["员工每天工作八小时。", "保险机构应当在十日内支付保险金。", "合同有效期内不得增加保险费。"]


@pytest.fixture
def rr() -> Iterator[FakeRerankServer]:
    with FakeRerankServer() as s:
        yield s


def remote(server: FakeRerankServer, **options: object) -> Reranker:
    opts = {"base_url": server.url, "model": MODEL, "timeout": 1, "retries": 1, **options}
    made = make_reranker(RerankConfig(kind="remote", options=opts))
    assert made is not None
    return made


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text
    return text


# -- remote: wire formats ------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["cohere", "tei"])
def test_remote_sends_the_wire_format_and_maps_results_back_by_index(rr: FakeRerankServer, api: str) -> None:
    r = remote(rr, api=api)
    scores = r.score(Q, DOCS)
    assert scores.index(max(scores)) == 1  # the server sorts its results: zhiku maps them by index
    req = rr.requests[-1]
    if api == "cohere":
        assert req.path == "/v1/rerank"
        assert req.body == {"model": MODEL, "query": Q, "documents": DOCS, "top_n": 3}
    else:
        assert req.path == "/rerank"
        assert req.body == {"query": Q, "texts": DOCS, "truncate": True}


def test_a_base_url_ending_in_v1_is_not_doubled(rr: FakeRerankServer) -> None:
    r = remote(rr, base_url=rr.url + "/v1/")
    r.score(Q, DOCS)
    assert rr.requests[-1].path == "/v1/rerank"


def test_remote_batches_requests(rr: FakeRerankServer) -> None:
    docs = [f"第{i}段：保险金" for i in range(70)]
    r = remote(rr, api="tei", batch_size=32)
    assert len(r.score(Q, docs)) == 70
    assert [len(x.body["texts"]) for x in rr.requests] == [32, 32, 6]


# -- remote: failures, one clear line each ----------------------------------------------------------------
def test_server_error_500(rr: FakeRerankServer) -> None:
    rr.script(Step("status", status=500, body={"error": "CUDA out of memory"}))
    with pytest.raises(BackendError) as e:
        remote(rr).score(Q, DOCS)
    msg = one_line(e.value)
    assert "HTTP 500" in msg and "CUDA out of memory" in msg and "log" in msg
    assert len(rr.requests) == 1, "a 500 is not retried"


def test_503_is_retried(rr: FakeRerankServer) -> None:
    rr.script(Step("status", status=503, body={"error": "loading"}, headers={"Retry-After": "0"}))
    assert len(remote(rr).score(Q, DOCS)) == 3
    assert len(rr.requests) == 2


def test_timeout_is_one_line_and_not_retried(rr: FakeRerankServer) -> None:
    rr.script(Step("slow", delay=2.0))
    t0 = time.perf_counter()
    with pytest.raises(BackendError) as e:
        remote(rr, timeout=0.3).score(Q, DOCS)
    assert "no response within 0.3s" in one_line(e.value) and "timeout" in e.value.hint  # type: ignore[operator]
    assert time.perf_counter() - t0 < 1.5
    assert len(rr.requests) == 1


def test_malformed_json(rr: FakeRerankServer) -> None:
    rr.script(Step("not-json"))
    with pytest.raises(BackendError) as e:
        remote(rr).score(Q, DOCS)
    assert "did not return JSON" in one_line(e.value) and "<html>" in str(e.value)


@pytest.mark.parametrize("api", ["cohere", "tei"])
def test_wrong_shape(rr: FakeRerankServer, api: str) -> None:
    rr.script(Step("bad-shape"))
    with pytest.raises(BackendError) as e:
        remote(rr, api=api).score(Q, DOCS)
    assert f"not in the {api} format" in one_line(e.value)


@pytest.mark.parametrize("api", ["cohere", "tei"])
def test_wrong_count_of_results(rr: FakeRerankServer, api: str) -> None:
    rr.script(Step("short"))
    with pytest.raises(BackendError) as e:
        remote(rr, api=api).score(Q, DOCS)
    assert "asked to score 3 passages, got 2 results" in one_line(e.value)


def test_too_many_documents_names_batch_size(rr: FakeRerankServer) -> None:
    with pytest.raises(BackendError) as e:
        remote(rr, api="tei", batch_size=40).score(Q, [f"p{i}" for i in range(40)])
    assert "HTTP 413" in one_line(e.value) and "batch_size" in str(e.value)


def test_unknown_model_and_wrong_path(rr: FakeRerankServer) -> None:
    with pytest.raises(BackendError) as e:
        remote(rr, model="nope").score(Q, DOCS)
    assert "not found" in one_line(e.value) and "try api = 'tei'" in str(e.value)


def test_connection_refused(rr: FakeRerankServer) -> None:
    url = rr.url
    rr.__exit__(None, None, None)
    with pytest.raises(BackendError) as e:
        make_reranker(RerankConfig(kind="remote", options={"base_url": url, "retries": 0})).score(Q, DOCS)  # type: ignore[union-attr]
    assert "connection refused" in one_line(e.value)


def test_the_api_key_is_sent_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANK_KEY", KEY)
    with FakeRerankServer(api_key=KEY) as server:
        r = remote(server, api_key_env="RERANK_KEY")
        assert len(r.score(Q, DOCS)) == 3
        assert server.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
        assert KEY not in repr(r) and KEY not in r.describe()
        monkeypatch.setenv("RERANK_KEY", KEY + "-wrong")
        wrong = remote(server, api_key_env="RERANK_KEY")
        with pytest.raises(BackendError) as e:
            wrong.score(Q, DOCS)
        msg = one_line(e.value)
        assert "API key was refused" in msg and "RERANK_KEY" in msg
        assert KEY not in msg and "***" in msg  # the server echoed the key: redacted


def test_missing_key_variable_and_bad_url() -> None:
    with pytest.raises(ConfigError, match="NO_SUCH_RERANK_KEY"):
        make_reranker(
            RerankConfig(kind="remote", options={"base_url": "http://x", "api_key_env": "NO_SUCH_RERANK_KEY"})
        )
    with pytest.raises(ConfigError, match="not an http"):
        make_reranker(RerankConfig(kind="remote", options={"base_url": "localhost:8000"}))
    with pytest.raises(ConfigError, match="option api"):
        make_reranker(RerankConfig(kind="remote", options={"base_url": "http://x", "api": "jina"}))


# -- specs and the registry ------------------------------------------------------------------------------
def test_rerank_specs() -> None:
    base = RerankConfig(kind="remote", top_n=7, options={"api": "tei", "base_url": "http://a"})
    assert rerank_config(None, base) == base
    assert rerank_config("off", base).kind is None
    spec = rerank_config("remote:http://b:8080", base)
    assert spec.options == {"api": "tei", "base_url": "http://b:8080"} and spec.top_n == 7
    other = rerank_config("cross-encoder:/models/bge", base)
    assert other.kind == "cross-encoder" and other.options == {"model": "/models/bge"}
    assert rerank_config("llm:listwise", base).options == {"mode": "listwise"}
    with pytest.raises(UnknownNameError, match="cross-encoder, llm, remote"):
        rerank_config("colbert", base)
    with pytest.raises(UsageError):
        rerank_config(":x", base)


def test_missing_cross_encoder_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as e:
        make_reranker(RerankConfig(kind="cross-encoder", options={"model": str(tmp_path / "bge-reranker")}))
    assert "not found" in one_line(e.value) and "huggingface-cli download" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="no config.json"):
        make_reranker(RerankConfig(kind="cross-encoder", options={"model": str(tmp_path / "empty")}))
    with pytest.raises(NotFoundError, match="needs a local model folder"):
        make_reranker(RerankConfig(kind="cross-encoder"))


# -- llm: parsing, fallbacks, cache ------------------------------------------------------------------------
def test_parse_score() -> None:
    cases = {
        "7": 7.0,
        "Score: 8/10": 8.0,
        "相关度：9分": 9.0,
        "I'd rate it 6 out of 10.": 6.0,
        "0": 0.0,
        "八": 8.0,
        "Relevance: 7.5": 7.5,
        "2024年": None,
        "no idea": None,
        "": None,
        "11": None,
    }
    for reply, want in cases.items():
        assert parse_score(reply) == want, reply


def test_parse_ranking() -> None:
    assert parse_ranking("[3] > [1] > [2]", 3) == [2, 0, 1]
    assert parse_ranking("2, 2, 9, 1", 3) == [1, 0]  # repeats and strays dropped
    assert parse_ranking("I cannot rank these.", 3) == []


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        s.reply = judge_reply
        yield s


def llm_reranker(server: FakeLLMServer, **options: object) -> Reranker:
    gen = GeneratorConfig(
        kind="ollama", options={"model": "qwen2.5:7b", "base_url": server.url, "timeout": 2}
    )
    made = make_reranker(RerankConfig(kind="llm", options=options), lambda: make_generator(gen))
    assert made is not None
    return made


def test_pointwise_caches_per_query_and_passage(llm: FakeLLMServer) -> None:
    r = llm_reranker(llm, mode="pointwise")
    first = r.score(Q, DOCS)
    assert first.index(max(first)) == 1 and len(llm.chat_requests()) == 3
    assert r.score(Q, DOCS[::-1]) == first[::-1]
    assert len(llm.chat_requests()) == 3, "the same (query, passage) pairs are not asked again"
    r.score(Q, [*DOCS, "新的段落"])
    assert len(llm.chat_requests()) == 4


def test_pointwise_malformed_reply_scores_zero_and_is_asked_again(llm: FakeLLMServer) -> None:
    r = llm_reranker(llm, mode="pointwise")
    llm.script(
        "chat", Step(text="<think>hmm</think>I am not sure."), Step(text="<think>x</think>Score: 9/10")
    )
    assert r.score(Q, DOCS[:2]) == [0.0, 9.0]
    assert r.score(Q, DOCS[:1]) == [1.0]  # asked again (not cached): the judge's 1/10 this time
    assert len(llm.chat_requests()) == 3


def test_listwise_ranks_in_windows_and_falls_back_to_the_first_stage_order(llm: FakeLLMServer) -> None:
    r = llm_reranker(llm, mode="listwise", window=3, step=2)
    docs = ["无关一", "无关二", "无关三", "无关四", "保险金在十日内支付"]
    scores = r.score(Q, docs)
    assert scores.index(max(scores)) == 4, "the best passage bubbles up from the last window"
    assert len(llm.chat_requests()) == 2  # windows [2:5] and [0:3]
    other = llm_reranker(llm, mode="listwise")
    llm.script("chat", Step(text="Sorry, I cannot help with that."))
    assert other.score(Q, DOCS) == [1.0, 0.5, 1 / 3], "an unusable reply keeps the first-stage order"


def test_llm_reranker_needs_an_llm_generator() -> None:
    r = make_reranker(RerankConfig(kind="llm"), lambda: make_generator(GeneratorConfig()))
    with pytest.raises(ConfigError, match="needs an LLM generator") as e:
        r.score(Q, DOCS)  # type: ignore[union-attr]
    assert "--llm" in str(e.value)
    with pytest.raises(ConfigError, match="generator_factory"):
        make_reranker(RerankConfig(kind="llm"))


def test_llm_backend_errors_pass_through(llm: FakeLLMServer) -> None:
    r = llm_reranker(llm, mode="pointwise")
    llm.script("chat", Step("status", status=500, body={"error": "boom"}))
    with pytest.raises(BackendError):
        r.score(Q, DOCS[:1])
