"""The rerank stage wired in: ``[rerank]`` in zhiku.toml, ``KnowledgeBase.search(rerank=…)``,
``zhiku search/ask --rerank``, and ``zhiku eval --methods bm25 --rerank …`` with its stage latency."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION
from tests.helpers.rerank_llm import POINTWISE, judge_reply
from tests.helpers.tiny_cross_encoder import build_tiny_cross_encoder
from tests.integration.fake_llm_server import FakeLLMServer
from tests.integration.fake_rerank_server import FakeRerankServer
from tests.integration.test_eval_cli import ZH_PARAGRAPHS, squad, write
from tests.integration.test_llm_backends import make_kb, run

from zhiku.config import KBConfig, RerankConfig
from zhiku.service import KnowledgeBase

Q = "达成赔偿协议后多久支付保险金"


@pytest.fixture
def rr() -> Iterator[FakeRerankServer]:
    with FakeRerankServer() as s:
        yield s


def set_rerank(root: Path, rerank: RerankConfig) -> None:
    cfg = KBConfig.load(root / "zhiku.toml").updated(rerank=rerank.model_dump())
    cfg.save(root / "zhiku.toml")


def test_config_round_trips_and_defaults_off(tmp_path: Path) -> None:
    assert KBConfig().rerank.kind is None
    cfg = KBConfig().updated(
        rerank={"kind": "remote", "top_n": 12, "threshold": 0.2, "options": {"api": "tei"}}
    )
    cfg.save(tmp_path / "zhiku.toml")
    text = (tmp_path / "zhiku.toml").read_text(encoding="utf-8")
    assert "[rerank]" in text and KBConfig.load(tmp_path / "zhiku.toml").rerank == cfg.rerank


def test_kb_search_reranks_by_config_and_by_argument(rr: FakeRerankServer, tmp_path: Path) -> None:
    root = make_kb(tmp_path / "kb")
    with KnowledgeBase.open(str(root)) as kb:
        plain = kb.search(Q, k=3, method="bm25")
        assert all("reranked" not in h.extra for h in plain) and not rr.requests
    set_rerank(root, RerankConfig(kind="remote", top_n=2, options={"api": "tei", "base_url": rr.url}))
    with KnowledgeBase.open(str(root)) as kb:
        hits = kb.search(Q, k=4, method="bm25")
        assert len(rr.requests) == 1 and len(rr.requests[0].body["texts"]) == 2  # top_n candidates
        assert [h.extra["reranked"] for h in hits[:2]] == [True, True]
        assert hits[0].chunk is not None and "十日内" in hits[0].chunk.text
        assert rr.requests[0].body["texts"][0] == plain[0].chunk.text  # type: ignore[union-attr]
        assert all("reranked" not in h.extra for h in kb.search(Q, k=3, method="bm25", rerank="off"))
        batch = kb.search_many([Q, "roses"], k=2, method="bm25")
        assert all(h.extra.get("reranked") for h in batch[0]) and len(rr.requests) == 3
    set_rerank(root, RerankConfig(kind="remote", threshold=0.99, options={"api": "tei", "base_url": rr.url}))
    with KnowledgeBase.open(str(root)) as kb:
        assert kb.search("completely unrelated words", k=5, method="bm25") == []


def test_cli_search_with_a_tiny_cross_encoder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = build_tiny_cross_encoder(tmp_path / "tiny-ce", [ZH_REGULATION, EN_GUIDE, Q])
    root = make_kb(tmp_path / "kb")
    code, out, err = run(
        capsys, "search", Q, "--kb", str(root), "-k", "3", "--json", "--rerank", f"cross-encoder:{model}"
    )
    assert code == 0, err
    hits = json.loads(out)
    assert len(hits) == 3 and [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    code, out, err = run(capsys, "search", Q, "--kb", str(root), "--rerank", f"cross-encoder:{tmp_path}/nope")
    assert code == 3 and "cross-encoder model folder not found" in err and len(err.strip().splitlines()) == 1


def test_cli_ask_reranks_with_the_answering_llm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_kb(tmp_path / "kb")
    with FakeLLMServer() as llm:
        llm.reply = judge_reply
        code, out, err = run(
            capsys,
            "ask",
            Q,
            "--kb",
            str(root),
            "-k",
            "2",
            "--json",
            "--rerank",
            "llm",
            "--llm",
            "ollama:qwen2.5:7b",
            "--base-url",
            llm.url,
        )
        assert code == 0, err
        systems = [r.body["messages"][0]["content"] for r in llm.chat_requests()]
    judged = [s for s in systems if s in POINTWISE]
    assert len(judged) >= 2 and len(systems) == len(judged) + 1  # the judge's calls, then the answer
    assert KBConfig.load(root / "zhiku.toml").rerank.kind is None, "--rerank is not saved"


def test_eval_reports_the_rerank_stage(
    rr: FakeRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = write(tmp_path / "zh.json", squad(ZH_PARAGRAPHS))
    out_dir = tmp_path / "report"
    code, out, err = run(
        capsys,
        "eval",
        str(ds),
        "--methods",
        "bm25",
        "--out",
        str(out_dir),
        "--rerank",
        f"remote:{rr.url}",
        '--set=rerank.options.api="tei"',
        "--set=rerank.top_n=5",
    )
    assert code == 0, err
    assert "bm25>remote" in out and "rerank ms" in out and "the rerank stage took" in out
    data = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    rows = {m["method"]: m for m in data["methods"]}
    assert set(rows) == {"bm25", "bm25>remote"}
    stages = rows["bm25>remote"]["stages"]
    assert stages["rerank_ms_p50"] > 0 and stages["first_stage_ms_p50"] > 0 and not rows["bm25"]["stages"]
    assert rows["bm25>remote"]["metrics"]["hit@1"] >= 0.8  # the overlap scorer finds these answers
    assert data["settings"]["rerank"]["kind"] == "remote"
    # one request per query (plus the warm-up), each with the top_n candidates
    assert len(rr.requests) == len(ZH_PARAGRAPHS) + 1
    assert all(len(r.body["texts"]) <= 5 for r in rr.requests)
    assert "--rerank" in data["command"]
