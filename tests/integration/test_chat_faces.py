"""One chat flow for every face: the same conversation through ``zhiku chat`` and through the API's
``/kbs/{kb}/ask`` gives the same answers and the same stored turns (issue 24: the flow was written
twice, in cli/chat.py and api/answering.py)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
httpx = pytest.importorskip("httpx2", reason="the API tests use the httpx2 client (installed with openai)")

from tests.helpers.corpus import EN_GUIDE, fast_config  # noqa: E402
from tests.helpers.live_server import live_server  # noqa: E402
from tests.integration.fake_llm_server import FakeLLMServer  # noqa: E402

from zhiku.cli.app import main  # noqa: E402
from zhiku.config import GeneratorConfig  # noqa: E402
from zhiku.generate.prompts import DEFAULTS  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402

KB = "garden"
QUESTIONS = ["How much sun do tomatoes need?", "And when do I prune them?", "What about watering?"]


def reply(messages: list[dict[str, str]]) -> str:
    """Deterministic: a follow-up is rewritten after what it follows; an answer names its question."""
    if messages[0]["content"] in (DEFAULTS["zh"].rewrite_system, DEFAULTS["en"].rewrite_system):
        follow_up = messages[-1]["content"].split("Follow-up question:")[-1]
        return (
            "How to water tomatoes?" if "watering" in follow_up else "Standalone query: When to prune roses?"
        )
    asked = messages[-1]["content"].split("Question:")[-1].split("\n")[0].strip()
    return f"Answer to «{asked}» from the guide [1]."


def stored(turns: list[Any]) -> list[dict[str, Any]]:
    """A stored turn as both faces must agree on it (the API adds display fields to citations)."""
    return [
        {
            "question": t["question"],
            "query": t["query"],
            "answer": t["answer"],
            "method": t["method"],
            "llm_error": t["llm_error"],
            "citations": [(c["n"], c["chunk_id"], c["source"], c["start"], c["end"]) for c in t["citations"]],
        }
        for t in turns
    ]


def test_the_cli_and_the_api_hold_the_same_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    with FakeLLMServer() as llm:
        llm.reply = reply
        generator = GeneratorConfig(kind="ollama", options={"model": "qwen2.5:7b", "base_url": llm.url})
        with KnowledgeBase.open(KB, home=home, config=fast_config(generator=generator)) as kb:
            kb.add_texts([("garden.md", "Gardening guide", EN_GUIDE)])
            cli_conversation = kb.conversations().create().id

        # The CLI: one question a line on standard input, turns stored in the conversation.
        monkeypatch.setenv("ZHIKU_HOME", str(home))
        monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(QUESTIONS) + "\n"))
        code = main(["chat", "--kb", KB, "--method", "bm25", "--conversation", cli_conversation])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "(searching for: When to prune roses?)" in err

        # The API: the same questions in another conversation of the same KB.
        with live_server(home) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            k = quote(KB, safe="")
            api_conversation = client.post(f"/kbs/{k}/conversations", json={}).json()["id"]
            answers = []
            for q in QUESTIONS:
                r = client.post(
                    f"/kbs/{k}/ask", json={"question": q, "conversation": api_conversation, "method": "bm25"}
                )
                assert r.status_code == 200, r.text
                answers.append(r.json()["answer"])
            cli_turns = client.get(f"/kbs/{k}/conversations/{cli_conversation}").json()["turns"]
            api_turns = client.get(f"/kbs/{k}/conversations/{api_conversation}").json()["turns"]

    assert len(cli_turns) == len(QUESTIONS)
    assert stored(cli_turns) == stored(api_turns)
    assert [t["answer"] for t in cli_turns] == answers
    assert all(a in out for a in answers)  # the CLI printed the same answers
    assert [t["query"] for t in api_turns][1:] == ["When to prune roses?", "How to water tomatoes?"]
    assert answers[1] == "Answer to «When to prune roses?» from the guide [1]."  # answered the rewrite
    assert all(t["citations"] for t in api_turns)
