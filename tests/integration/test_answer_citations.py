"""Citations that are always true, in every face: an LLM (a loopback OpenAI-compatible server) writes
``[9]`` with three sources, and neither the CLI's stream, the API's SSE, the OpenAI-compatible
stream nor the whole answers show it. The fake server sends three characters a piece, so the
marker arrives split ("另见[" then "9]和"). The page reads the same SSE events as the API test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
httpx = pytest.importorskip("httpx2", reason="the API tests use the httpx2 client (installed with openai)")

from tests.helpers.corpus import fast_config  # noqa: E402
from tests.helpers.live_server import LiveServer, live_server  # noqa: E402
from tests.integration.fake_llm_server import FakeLLMServer  # noqa: E402

from zhiku.cli.app import main  # noqa: E402
from zhiku.config import GeneratorConfig, MethodConfig  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402

REPLY = "保险金十日内支付[1]，另见[9]和[2]，以及[3]。"
CLEAN = "保险金十日内支付[1]，另见和[2]，以及[3]。"
QUESTION = "保险金多久内支付？"
DOCS = {
    "a.md": "# 甲办法\n\n保险机构应当在十日内支付保险金。",
    "b.md": "# 乙办法\n\n保险金的支付应当及时，保险机构不得拖延。",
    "c.md": "# 丙办法\n\n保险金支付后，保险机构应当通知投保人。",
}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        s.reply = lambda messages: REPLY
        yield s


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLMServer) -> Path:
    root = tmp_path_factory.mktemp("cites")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    cfg = fast_config()
    gen = GeneratorConfig(
        kind="openai", options={"model": "deepseek-chat", "base_url": llm.openai_url, "retries": 0}
    )
    cfg = cfg.updated(methods={"bm25": MethodConfig(kind="bm25")}, generator=gen.model_dump())
    with KnowledgeBase.open("law", home=root / "home", config=cfg) as kb:
        kb.ingest([str(docs)])
        assert kb.chunk_count() == 3
    return root / "home"


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[LiveServer]:
    with live_server(home) as s:
        yield s


def test_cli_stream_never_shows_an_invalid_citation(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", QUESTION, "--kb", str(home / "law"), "-m", "bm25", "-k", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(CLEAN) and "[9]" not in out
    code = main(["ask", QUESTION, "--kb", str(home / "law"), "-m", "bm25", "-k", "3", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["answer"] == CLEAN and data["invalid_citations"] == [9]
    assert [c["n"] for c in data["citations"]] == [1, 2, 3]


def _sse(r: Any) -> list[tuple[str, Any]]:
    events, name = [], ""
    for line in r.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, line[6:]))
    return events


def test_sse_stream_and_whole_answer_never_show_it(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        body = {"question": QUESTION, "k": 3, "method": "bm25"}
        whole = client.post("/kbs/law/ask", json=body).json()
        assert whole["answer"] == CLEAN and len(whole["citations"]) == 3
        with client.stream("POST", "/kbs/law/ask", json={**body, "stream": True}) as r:
            events = _sse(r)
    tokens = "".join(json.loads(d)["text"] for n, d in events if n == "token")
    assert tokens == CLEAN and "[9]" not in tokens
    assert json.loads(events[-1][1])["answer"] == CLEAN


def test_openai_compatible_stream_never_shows_it(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        body = {"model": "law", "messages": [{"role": "user", "content": QUESTION}], "k": 3, "method": "bm25"}
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
            assert r.status_code == 200
            chunks = [json.loads(d) for _, d in _sse(r) if d != "[DONE]"]
        whole = client.post("/v1/chat/completions", json=body).json()
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text.startswith(CLEAN) and "[9]" not in text
    assert whole["choices"][0]["message"]["content"].startswith(CLEAN)
