"""RAG-Fusion (`--method fusion`) and `zhiku chat` against the loopback LLM server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.fake_llm_server import FakeLLMServer, Step
from tests.integration.test_llm_backends import ZH_Q, make_kb, run

from zhiku.config import GeneratorConfig, MethodConfig
from zhiku.errors import ConfigError
from zhiku.generate.prompts import DEFAULTS
from zhiku.retrieve.methods.rag_fusion import parse_queries
from zhiku.service import KnowledgeBase

REFORMULATIONS = (
    "1. 保险赔偿款的支付期限\n2. 达成赔偿协议后多久付款\n- 保险金 支付 十日\n保险金什么时候支付？\n"
)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


def fusion_reply(messages: list[dict[str, str]]) -> str:
    if messages[0]["content"] == DEFAULTS["zh"].fusion_system:
        return REFORMULATIONS
    if messages[0]["content"] == DEFAULTS["zh"].rewrite_system:
        return "独立查询：农业保险合同有效期内能否增加保险费？"
    return "可以参考资料[1]。"


def test_parse_queries() -> None:
    assert parse_queries(REFORMULATIONS, 4, "保险金什么时候支付？") == [
        "保险赔偿款的支付期限",
        "达成赔偿协议后多久付款",
        "保险金 支付 十日",
    ]
    assert parse_queries("Here are 2 queries:\n(1) a\n2) b\n3) c", 2, "q") == ["a", "b"]
    assert parse_queries("一、退款流程\n（二）退钱", 5, "怎么退钱") == ["退款流程", "退钱"]


def test_fusion_retrieves_every_reformulation_and_fuses(
    server: FakeLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = fusion_reply
    root = make_kb(
        tmp_path / "kb",
        fusion=MethodConfig(
            kind="fusion",
            options={
                "llm": "ollama:qwen2.5:7b",
                "base_url": server.url,
                "queries": 3,
                "of": ["bm25", "dense"],
            },
        ),
    )
    code, out, err = run(capsys, "search", ZH_Q, "--kb", str(root), "--method", "fusion", "-k", "3", "--json")
    assert code == 0, err
    hits = json.loads(out)
    assert hits and hits[0]["path"].endswith("农业保险办法.md") and hits[0]["method"] == "fusion"
    [request] = server.chat_requests()
    assert request.body["options"]["temperature"] == 0.0
    assert request.body["messages"][1]["content"] == f"请为这个问题写出 3 个检索查询：\n{ZH_Q}"

    with KnowledgeBase.open(str(root)) as kb:
        fusion = kb.ready_method("fusion")
        hits = fusion.search(ZH_Q, 5)
        assert hits[0].extra["queries"] == [
            ZH_Q,
            "保险赔偿款的支付期限",
            "达成赔偿协议后多久付款",
            "保险金 支付 十日",
        ]
        # 4 queries x 2 methods were fused: the top hit's ranks come from both methods.
        assert set(hits[0].extra["ranks"]) == {"bm25", "dense"}
        fusion.search(ZH_Q, 5)
    assert len(server.chat_requests()) == 2  # one per KB instance: the reformulations are cached


def test_fusion_ask_and_defaults(
    server: FakeLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = fusion_reply
    root = make_kb(
        tmp_path / "kb",
        fusion=MethodConfig(kind="fusion", options={"llm": "ollama:qwen2.5:7b", "base_url": server.url}),
    )
    code, out, err = run(
        capsys,
        "ask",
        ZH_Q,
        "--kb",
        str(root),
        "--method",
        "fusion",
        "--llm",
        "ollama:qwen2.5:7b",
        "--base-url",
        server.url,
    )
    assert code == 0, err
    assert out.startswith("可以参考资料[1]。") and "Sources:" in out
    with KnowledgeBase.open(str(root)) as kb:
        assert kb.method("fusion").describe()["queries"] == 4  # default: 4 reformulations over hybrid


def test_fusion_failures(server: FakeLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_kb(
        tmp_path / "kb",
        nollm=MethodConfig(kind="fusion"),
        fusion=MethodConfig(
            kind="fusion", options={"llm": "ollama:qwen2.5:7b", "base_url": server.url, "timeout": 1}
        ),
    )
    code, _, err = run(capsys, "search", ZH_Q, "--kb", str(root), "--method", "nollm")
    assert code == 2 and "needs an LLM to write the queries" in err and "llm = 'ollama:qwen2.5:7b'" in err
    server.script("chat", Step("status", status=500, body={"error": "out of memory"}))
    code, _, err = run(capsys, "search", ZH_Q, "--kb", str(root), "--method", "fusion")
    assert code == 7 and "server error (HTTP 500: out of memory)" in err
    with pytest.raises(ConfigError, match="option queries"):
        with KnowledgeBase.open(str(root)) as kb:
            kb.config = kb.config.updated(
                methods={**kb.config.methods, "bad": MethodConfig(kind="fusion", options={"queries": 0})}
            )
            kb.method("bad")


# -- chat ------------------------------------------------------------------------------------------
def test_chat_rewrites_follow_ups_and_keeps_history(
    server: FakeLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reply = fusion_reply
    root = make_kb(tmp_path / "kb")
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(f"{ZH_Q}\n\n那能加保费吗？\n/reset\n那能加保费吗？\n/exit\nignored\n")
    )
    code, out, err = run(
        capsys,
        "chat",
        "--kb",
        str(root),
        "-m",
        "bm25",
        "--llm",
        "ollama:qwen2.5:7b",
        "--base-url",
        server.url,
    )
    assert code == 0, err
    assert out.count("可以参考资料[1]。") == 2 and out.count("Sources:") == 2
    # After /reset the follow-up is searched as typed; bm25 finds nothing, so the model is not asked.
    assert out.rstrip().endswith("知识库中没有找到能回答这个问题的内容。")
    assert err.count("(searching for: 农业保险合同有效期内能否增加保险费？)") == 1  # after /reset: as typed
    assert "(conversation forgotten)" in err
    chats = [r.body["messages"] for r in server.chat_requests()]
    assert len(chats) == 3  # answer, rewrite + answer
    rewrite = chats[1]
    assert rewrite[0]["content"] == DEFAULTS["zh"].rewrite_system
    assert f"用户：{ZH_Q}\n助手：可以参考资料[1]。" in rewrite[1]["content"]
    assert "追问：那能加保费吗？" in rewrite[1]["content"]
    assert "问题：农业保险合同有效期内能否增加保险费？" in chats[2][1]["content"]


def test_chat_goes_on_after_a_failed_turn_and_works_without_an_llm(
    server: FakeLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_kb(
        tmp_path / "kb",
        GeneratorConfig(kind="ollama", options={"model": "qwen2.5:7b", "base_url": server.url, "retries": 0}),
    )
    server.script("chat", Step("status", status=500, body={"error": "boom"}))
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{ZH_Q}\nWhen should roses be pruned?\n"))
    code, out, err = run(capsys, "chat", "--kb", str(root), "-m", "bm25")
    assert code == 0  # the last turn succeeded
    assert "error: ollama at" in err and "HTTP 500: boom" in err
    assert (
        "these are the passages retrieval found" in out and "The answer is in the first passage [1]." in out
    )
    # The failed turn is not history: the second question was not rewritten.
    assert all(
        r.body["messages"][0]["content"] != DEFAULTS["en"].rewrite_system for r in server.chat_requests()
    )

    monkeypatch.setattr("sys.stdin", io.StringIO("Prune roses when?\nand tomatoes?\n"))
    code, out, err = run(capsys, "chat", "--kb", str(root), "-m", "bm25", "--llm", "extractive")
    assert code == 0, err
    assert "Prune roses in late winter" in out and "searching for" not in err
