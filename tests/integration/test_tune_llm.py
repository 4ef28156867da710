"""`zhiku tune questions --llm` end to end against a loopback server speaking the OpenAI and Ollama
wire formats, with scripted replies: clean JSON, JSON in a code fence after chatter, numbered
lines, garbage, and a server error; then a resumed run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.law_corpus import law_documents, tune_config
from tests.integration.fake_llm_server import FakeLLMServer, Step

from zhiku.cli.app import main
from zhiku.service import KnowledgeBase
from zhiku.tune import questions as tq
from zhiku.tune.llm_questions import parse_reply


@pytest.fixture()
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


def _passage(messages: list[dict[str, str]]) -> str:
    return messages[-1]["content"].split("]\n", 1)[-1]


def scripted(messages: list[dict[str, str]]) -> str:
    """A model that reads the passage: replies vary by chunk, in the shapes real models return."""
    text = _passage(messages)
    first = text.split("。")[0]
    article = first.split(" ", 1)[0]
    subject = first.split(" ", 1)[-1][:6]
    n = sum(map(ord, text)) % 4
    if n == 0:
        return json.dumps(
            [
                {"question": f"{subject}要办什么手续？", "kind": "keyword", "evidence": first},
                {"question": f"{article}说了哪些期限？", "kind": "number", "evidence": "不在原文"},
            ],
            ensure_ascii=False,
        )
    if n == 1:
        return (
            "好的，以下是问题：\n```json\n"
            + json.dumps([{"q": f"{subject}应当怎么处理？"}], ensure_ascii=False)
            + "\n```\n希望有帮助。"
        )
    if n == 2:
        return f"1. {subject}由哪个部门审查？\n2) 多少日内完成{subject}审查？\n"
    return "I cannot help with that."  # no question at all: counted as unparsed


def test_parse_reply_handles_what_models_return() -> None:
    assert [q for q, _, _ in parse_reply('[{"question": "保险期限多久？"}]')] == ["保险期限多久？"]
    assert [q for q, _, _ in parse_reply('Sure!\n```json\n["a question?", "另一个问题？"]\n```')] == [
        "a question?",
        "另一个问题？",
    ]
    assert [q for q, _, _ in parse_reply('{"questions": [{"question": "房屋租赁要登记吗"}]}')] == [
        "房屋租赁要登记吗"
    ]
    assert [q for q, _, _ in parse_reply("1. 什么是保险？\n- 税收怎么交？\n问题3：发票丢了怎么办")] == [
        "什么是保险？",
        "税收怎么交？",
        "发票丢了怎么办",
    ]
    assert parse_reply("Sorry, I can't.") == []
    assert parse_reply('[{"question": "半个') == []  # truncated JSON, no usable line


@pytest.mark.parametrize("flavour", ["openai", "ollama"])
def test_llm_questions_end_to_end(
    flavour: str, server: FakeLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "kb"
    with KnowledgeBase.open(str(root), config=tune_config()) as kb:
        kb.add_texts(law_documents(n_docs=6, articles=4))
    server.reply = scripted
    server.script("chat", Step("status", status=500, body={"error": "boom"}), Step("malformed"))
    url = server.openai_url if flavour == "openai" else server.url
    spec = "openai:deepseek-chat" if flavour == "openai" else "ollama:qwen2.5:7b"
    argv = [
        "tune",
        "questions",
        "--kb",
        str(root),
        "--llm",
        spec,
        "--base-url",
        url,
        "--per-chunk",
        "2",
        "--sample",
        "16",
        "--json",
    ]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["generator"].startswith(f"llm:{flavour}")
    assert info["chunks_done"] + info["failed_chunks"] == 16
    assert info["unparsed_replies"] >= 1 and info["generated"] > 5
    questions = tq.read_jsonl(Path(info["files"]["all"]))
    assert questions and all(q.generator.startswith("llm:") for q in questions)
    with KnowledgeBase.open(str(root), create=False) as kb:
        texts = {c.id: c.text for c in tq.source_chunks(kb)}
    for q in questions:
        # Evidence the model made up ("不在原文") is replaced by a span of the chunk.
        assert q.evidence[0].replace(" ", "") in texts[q.chunk].replace(" ", "")
        assert q.kind in ("keyword", "everyday", "number")
    assert len(server.chat_requests()) >= 16
    # A second run resumes: only chunks that failed are asked again.
    before = len(server.chat_requests())
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["resumed"] == info["chunks_done"]
    assert len(server.chat_requests()) - before == info["failed_chunks"]
    # The Chinese prompt was used for Chinese chunks.
    sent = server.chat_requests()[-1].body
    assert "段落" in json.dumps(sent, ensure_ascii=False)
