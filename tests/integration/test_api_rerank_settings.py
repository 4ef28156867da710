"""The reranker chosen through ``PUT /kbs/{kb}/settings`` (issue 15): validated like zhiku.toml,
written atomically, keys kept on the server, and then used by search and ask over the API.

The rerank server is a real HTTP server on loopback (``fake_rerank_server``) whose scores are the
share of the query's words found in a passage, so a test can tell a reranked hit by its score.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
httpx = pytest.importorskip("httpx2", reason="the API tests use the httpx2 client (installed with openai)")

from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION, fast_config  # noqa: E402
from tests.helpers.live_server import LiveServer, live_server  # noqa: E402
from tests.helpers.tiny_cross_encoder import build_tiny_cross_encoder  # noqa: E402
from tests.integration.fake_rerank_server import MODEL, FakeRerankServer, overlap  # noqa: E402

from zhiku.config import KBConfig  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402

Q = "达成赔偿协议后多久支付保险金"
KEY = "sk-rerank-secret-7f3a"
#: more passages that share words with Q, so bm25 returns more hits than are reranked
CLAIMS = {
    "理赔须知.md": "# 理赔须知\n\n申请保险金需要提交保单和身份证明。保险金支付前，保险公司会核定损失。\n",
    "赔偿协议范本.md": "# 赔偿协议范本\n\n双方达成赔偿协议后，应当签字确认。协议一式两份。\n",
    "保险金领取.md": "# 保险金领取\n\n保险金可以转账领取，也可以到营业厅领取。\n",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    (docs / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    for name, text in CLAIMS.items():
        (docs / name).write_text(text, encoding="utf-8")
    with KnowledgeBase.open("docs", home=home, config=fast_config()) as kb:
        kb.ingest([docs])
    with live_server(home) as s:
        yield s


@pytest.fixture
def client(server: LiveServer) -> Iterator[Any]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def toml_of(server: LiveServer) -> Path:
    return server.state.kbs.get("docs").layout.config  # type: ignore[no-any-return]


def search(client: Any, query: str = Q, k: int = 5) -> dict[str, Any]:
    r = client.post("/kbs/docs/search", json={"query": query, "k": k, "method": "bm25"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_remote_reranker_set_through_the_api_reranks_search_and_ask(
    client: Any, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = client.get("/kbs/docs/settings").json()
    assert shown["rerank"]["kind"] == "none" and shown["rerank"]["top_n"] == 30
    assert {"none", "cross-encoder", "remote", "llm"} <= set(shown["rerank_kinds"])
    plain = search(client)
    assert plain["reranker"] is None and all("reranked" not in h for h in plain["hits"])

    monkeypatch.setenv("ZHIKU_RERANK_KEY", KEY)
    with FakeRerankServer(api_key=KEY) as rr:
        body = {
            "kind": "remote",
            "base_url": rr.url,
            "api": "cohere",
            "model": MODEL,
            "api_key_env": "ZHIKU_RERANK_KEY",
            "top_n": 3,
        }
        r = client.put("/kbs/docs/settings", json={"rerank": body})
        assert r.status_code == 200, r.text
        shown = r.json()["rerank"]
        assert shown["kind"] == "remote" and shown["top_n"] == 3 and shown["threshold"] is None
        assert shown["key"] == "$ZHIKU_RERANK_KEY is set" and KEY not in r.text
        saved = KBConfig.load(toml_of(server)).rerank
        assert saved.kind == "remote" and saved.top_n == 3
        assert saved.options == {
            "api": "cohere",
            "base_url": rr.url,
            "model": MODEL,
            "api_key_env": "ZHIKU_RERANK_KEY",
        }
        assert KEY not in toml_of(server).read_text(encoding="utf-8")
        assert not rr.requests  # saving builds the reranker but contacts nobody

        # search: the first 3 bm25 hits went to the server, with the key, and came back in its order.
        res = search(client)
        assert res["reranker"] == f"remote:cohere:{MODEL}"
        assert len(rr.requests) == 1 and rr.requests[0].headers["Authorization"] == f"Bearer {KEY}"
        sent = rr.requests[0].body["documents"]
        assert sent == [h["text"] for h in plain["hits"][:3]]
        head, tail = res["hits"][:3], res["hits"][3:]
        assert len(tail) == 2 and [h["chunk_id"] for h in tail] == [h["chunk_id"] for h in plain["hits"][3:]]
        assert all(h["reranked"] for h in head) and all(h["reranked"] is False for h in tail)
        assert [h["score"] for h in head] == sorted((overlap(Q, t) for t in sent), reverse=True)
        assert [h["score"] for h in head] == [overlap(Q, h["text"]) for h in head]
        # The reranker's effect: bm25's second hit (the article with the answer) is now first.
        assert plain["hits"][0]["title"] == "赔偿协议范本" and "十日内" in plain["hits"][1]["text"]
        assert [h["first_rank"] for h in head] == [2, 1, 3] and "十日内" in head[0]["text"]

        # ask: retrieval reranked the same way; the answer cites the reranked passages.
        r = client.post("/kbs/docs/ask", json={"question": Q, "k": 3, "method": "bm25"})
        assert r.status_code == 200, r.text
        assert r.json()["reranker"] == f"remote:cohere:{MODEL}" and len(rr.requests) == 2
        assert {c["chunk_id"] for c in r.json()["citations"]} <= {h["chunk_id"] for h in head}

        # A threshold on the server's scale drops what it scores below; null clears it again.
        r = client.put("/kbs/docs/settings", json={"rerank": {**body, "threshold": 0.99}})
        assert r.status_code == 200 and r.json()["rerank"]["threshold"] == 0.99
        assert search(client, "completely unrelated words")["hits"] == []
        r = client.put("/kbs/docs/settings", json={"rerank": {**body, "threshold": None}})
        assert (
            r.json()["rerank"]["threshold"] is None
            and KBConfig.load(toml_of(server)).rerank.threshold is None
        )

    # Off: plain bm25 again, the options kept for when it is turned back on.
    r = client.put("/kbs/docs/settings", json={"rerank": {"kind": "none"}})
    assert r.status_code == 200 and r.json()["rerank"]["kind"] == "none"
    assert search(client)["reranker"] is None
    assert KBConfig.load(toml_of(server)).rerank.options["base_url"] == rr.url
    # An option the page does not show, set by hand while off, survives turning it back on; the
    # fields the page shows are what it sent (empty ones dropped).
    cfg = KBConfig.load(toml_of(server))
    cfg.updated(rerank={**cfg.rerank.model_dump(), "options": {**cfg.rerank.options, "timeout": 5.0}}).save(
        toml_of(server)
    )
    r = client.put(
        "/kbs/docs/settings", json={"rerank": {"kind": "remote", "base_url": rr.url, "api": "tei"}}
    )
    assert r.status_code == 200, r.text
    assert KBConfig.load(toml_of(server)).rerank.options == {"api": "tei", "base_url": rr.url, "timeout": 5.0}


def test_bad_reranker_settings_fail_with_one_line_and_leave_zhiku_toml_alone(
    client: Any, server: LiveServer, tmp_path: Path
) -> None:
    before = toml_of(server).read_bytes()
    missing = tmp_path / "no-such-model"
    cases = [
        ({"kind": "remote", "base_url": "http://127.0.0.1:9", "top_n": 0}, "settings.rerank.top_n: "),
        (
            {"kind": "remote", "base_url": "http://127.0.0.1:9", "api": "grpc"},
            "remote reranker: option api: ",
        ),
        ({"kind": "remote", "base_url": "ftp://host"}, "is not an http(s) URL"),
        ({"kind": "remote"}, "is not an http(s) URL"),
        (
            {"kind": "remote", "base_url": "http://127.0.0.1:9", "api_key_env": "ZHIKU_NO_SUCH_KEY"},
            "ZHIKU_NO_SUCH_KEY (api_key_env) is not set",
        ),
        ({"kind": "cross-encoder", "model": str(missing)}, "cross-encoder model folder not found"),
        ({"kind": "cross-encoder"}, "needs a local model folder"),
        ({"kind": "llm"}, "the generator is extractive"),
        ({"kind": "llm", "mode": "sideways"}, "the generator is extractive"),
        ({"kind": "bge"}, "unknown reranker 'bge'"),
    ]
    for rerank, message in cases:
        r = client.put("/kbs/docs/settings", json={"rerank": rerank})
        assert r.status_code == 400, (rerank, r.text)
        error = r.json()["error"]["message"]
        assert message in error and "\n" not in error, (rerank, error)
    r = client.put("/kbs/docs/settings", json={"rerank": {"kind": "remote", "api_key": "sk-x"}})
    assert r.status_code == 422  # a key cannot even be sent
    # An llm mode is checked once there is an LLM to judge with.
    llm = {"kind": "ollama", "model": "qwen2.5:7b", "base_url": "http://127.0.0.1:9"}
    r = client.put(
        "/kbs/docs/settings", json={"generator": llm, "rerank": {"kind": "llm", "mode": "sideways"}}
    )
    assert r.status_code == 400 and "llm reranker: option mode: " in r.json()["error"]["message"]
    assert toml_of(server).read_bytes() == before
    r = client.put(
        "/kbs/docs/settings", json={"generator": llm, "rerank": {"kind": "llm", "mode": "listwise"}}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["rerank"]["kind"], r.json()["rerank"]["mode"]) == ("llm", "listwise")


def test_a_cross_encoder_folder_set_through_the_api_reranks(client: Any, tmp_path: Path) -> None:
    model = build_tiny_cross_encoder(tmp_path / "tiny-ce", [ZH_REGULATION, EN_GUIDE, Q])
    r = client.put(
        "/kbs/docs/settings", json={"rerank": {"kind": "cross-encoder", "model": str(model), "top_n": 5}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["rerank"]["model"] == str(model)
    res = search(client, k=3)
    assert res["reranker"] == f"cross-encoder:{model}"
    assert all(h["reranked"] for h in res["hits"]) and len(res["hits"]) == 3
    assert [h["score"] for h in res["hits"]] == sorted((h["score"] for h in res["hits"]), reverse=True)


def test_an_llm_reranker_follows_the_generator(client: Any) -> None:
    llm = {"kind": "ollama", "model": "qwen2.5:7b", "base_url": "http://127.0.0.1:9"}
    r = client.put("/kbs/docs/settings", json={"generator": llm, "rerank": {"kind": "llm", "top_n": 8}})
    assert r.status_code == 200 and r.json()["rerank"]["kind"] == "llm"
    # Back to the extractive answerer while the llm reranker is on: refused, with what to do.
    r = client.put("/kbs/docs/settings", json={"generator": {"kind": "extractive"}})
    assert r.status_code == 400 and "the generator is extractive" in r.json()["error"]["message"]
    # Other settings still save while it stays as it is.
    r = client.put("/kbs/docs/settings", json={"default_method": "bm25"})
    assert r.status_code == 200 and r.json()["default_method"] == "bm25"
