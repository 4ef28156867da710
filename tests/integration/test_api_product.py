"""The API as a product (issue 15): Chinese names everywhere, uploads that never half-fail, job
progress that only moves forward. Real HTTP against the app under Uvicorn on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
httpx = pytest.importorskip("httpx2", reason="the API tests use the httpx2 client (installed with openai)")

from tests.helpers.corpus import EN_GUIDE, ZH_NOTES, ZH_REGULATION, fast_config, make_docx  # noqa: E402
from tests.helpers.live_server import LiveServer, live_server, wait_job  # noqa: E402

SETTINGS = fast_config().model_dump(mode="json", exclude_none=True)
KB = "网页库2"
K = quote(KB, safe="")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "home") as s:
        yield s


@pytest.fixture
def client(server: LiveServer) -> Iterator[Any]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def upload(client: Any, kb: str, files: list[tuple[str, bytes]], wait: bool = True) -> Any:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post(
        f"/kbs/{quote(kb, safe='')}/documents", params={"wait": "true"} if wait else {}, files=parts
    )


def sse_events(response: Any) -> list[tuple[str, Any]]:
    events, name = [], "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and line[6:] != "[DONE]":
            events.append((name, json.loads(line[6:])))
    return events


def test_every_route_works_with_a_chinese_kb_name_and_chinese_file_names(client: Any, tmp_path: Path) -> None:
    r = client.post("/kbs", json={"name": KB, "settings": SETTINGS})
    assert r.status_code == 201, r.text
    assert client.get(f"/kbs/{K}").json()["name"] == KB
    assert KB in [k["name"] for k in client.get("/kbs").json()]

    # The bug: a 500 from the latin-1 Location header, while the ingest ran anyway.
    r = upload(
        client,
        KB,
        [("农业保险办法.md", ZH_REGULATION.encode()), ("员工手册.txt", ZH_NOTES.encode())],
        wait=False,
    )
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    assert location == f"/kbs/{K}/jobs/{r.json()['id']}" and location.isascii()
    job = client.get(location).json()  # the header is a working address
    job = wait_job(client, KB, job)
    assert job["state"] == "done" and sorted(job["result"]["added"]) == ["农业保险办法.md", "员工手册.txt"]
    with client.stream("GET", f"{location}/events") as events:
        assert sse_events(events)[-1][1]["state"] == "done"
    assert [j["id"] for j in client.get(f"/kbs/{K}/jobs").json()] == [job["id"]]

    docs = client.get(f"/kbs/{K}/documents").json()
    assert sorted(d["name"] for d in docs) == ["农业保险办法.md", "员工手册.txt"]
    doc = next(d for d in docs if d["name"] == "农业保险办法.md")
    assert client.get(f"/kbs/{K}/documents/{doc['id']}").json()["title"] == "示例农业保险办法"

    hits = client.post(f"/kbs/{K}/search", json={"query": "保险金支付", "method": "bm25"}).json()["hits"]
    assert hits and hits[0]["title"] == "示例农业保险办法"
    whole = client.post(f"/kbs/{K}/ask", json={"question": "保险机构应当在多少日内支付保险金？"}).json()
    assert "十日内" in whole["answer"]
    assert whole["citations"][0]["url"].startswith(f"/kbs/{K}/documents/")
    assert client.get(whole["citations"][0]["url"]).status_code == 200
    with client.stream("POST", f"/kbs/{K}/ask", json={"question": "年假几天？", "stream": True}) as r:
        assert r.status_code == 200 and sse_events(r)[-1][0] == "done"

    # The OpenAI face: the KB is a model by its Chinese name.
    assert KB in [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert client.get(f"/v1/models/{K}").json()["id"] == KB
    reply = client.post(
        "/v1/chat/completions",
        json={"model": KB, "messages": [{"role": "user", "content": "保险机构应当在多少日内支付保险金？"}]},
    ).json()
    assert "十日内" in reply["choices"][0]["message"]["content"]

    # An evaluation set with a Chinese name: its Location header is ASCII too.
    qa = json.dumps({"question": "保险金几日内支付？", "doc": "农业保险办法.md"}, ensure_ascii=False)
    r = client.post(
        f"/kbs/{K}/eval",
        files={"file": ("评测集.jsonl", qa.encode(), "application/json")},
        data={"methods": "bm25"},
    )
    assert r.status_code == 202, r.text
    assert r.headers["location"].isascii() and r.headers["location"].startswith(f"/kbs/{K}/jobs/")
    assert wait_job(client, KB, client.get(r.headers["location"]).json())["state"] in ("done", "failed")

    assert client.delete(f"/kbs/{K}/documents/{doc['id']}").json()["deleted"]["name"] == "农业保险办法.md"
    assert client.delete(f"/kbs/{K}").json() == {"deleted": KB}
    assert client.get(f"/kbs/{K}").status_code == 404


def test_an_unsupported_file_is_refused_and_the_others_are_ingested(client: Any, tmp_path: Path) -> None:
    client.post("/kbs", json={"name": "docs", "settings": SETTINGS})
    docx = make_docx(tmp_path / "coffee.docx").read_bytes()
    files = [
        ("coffee.docx", docx),
        ("garden.md", EN_GUIDE.encode()),
        ("t.numbers", b"PK\x03\x04"),
        ("空.md", b""),
        ("tool.exe", b"MZ"),
    ]
    r = upload(client, "docs", files, wait=False)
    assert r.status_code == 202, r.text
    refused = {f["file"]: f["error"] for f in r.json()["refused"]}
    assert set(refused) == {"t.numbers", "空.md", "tool.exe"}
    assert "unsupported file type .numbers" in refused["t.numbers"] and ".docx" in refused["t.numbers"]
    assert "is empty" in refused["空.md"]
    job = wait_job(client, "docs", r.json())
    assert job["state"] == "done" and sorted(job["result"]["added"]) == ["coffee.docx", "garden.md"]
    assert {f["file"] for f in job["result"]["refused"]} == set(refused)
    assert sorted(d["name"] for d in client.get("/kbs/docs/documents").json()) == ["coffee.docx", "garden.md"]


def test_job_progress_never_goes_backwards_and_done_is_complete(client: Any) -> None:
    client.post("/kbs", json={"name": "docs", "settings": SETTINGS})
    files = [(f"note{i}.md", f"# Note {i}\n\n{EN_GUIDE}\n\nExtra line {i}.".encode()) for i in range(12)]
    job = upload(client, "docs", files, wait=False).json()
    with client.stream("GET", f"/kbs/docs/jobs/{job['id']}/events") as r:
        events = [data for _, data in sse_events(r)]
    final = events[-1]
    assert final["state"] == "done"
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress), progress  # the bug: "ingest 40/40" then "build bm25 0/2032"
    assert final["progress"] == 1.0 and final["done"] == final["total"] > 0
    names = [p["name"] for p in final["phases"]]
    assert names[0] == "ingest" and {"build bm25", "build dense"} <= set(names)
    assert all(p["done"] == p["total"] for p in final["phases"])
    ingest = final["phases"][0]
    assert ingest["total"] == 12
    for e in events:  # each phase keeps its own counts; earlier phases stay complete
        for p in e["phases"][:-1]:
            assert p["done"] == p["total"]
        assert all(0 <= p["done"] <= p["total"] for p in e["phases"])


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound and closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_when_the_llm_fails_the_passages_come_with_a_reason_for_the_operator(client: Any) -> None:
    dead = {
        "kind": "ollama",
        "options": {
            "model": "qwen2.5:7b",
            "retries": 0,
            "timeout": 5,
            "base_url": f"http://127.0.0.1:{_closed_port()}",
        },
    }
    client.post("/kbs", json={"name": "docs", "settings": {**SETTINGS, "generator": dead}})
    assert upload(client, "docs", [("garden.md", EN_GUIDE.encode())]).json()["state"] == "done"
    question = {"question": "How much sunlight do tomatoes need?", "method": "bm25", "k": 2}

    r = client.post("/kbs/docs/ask", json=question)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] == "" and not body["found"]
    reason = body["llm_error"]
    assert "ollama" in reason and "127.0.0.1" in reason and "\n" not in reason
    assert "--base-url" not in reason and "--llm" not in reason  # not a CLI hint
    assert [c["n"] for c in body["citations"]] == [1, 2][: len(body["citations"])]
    assert "six hours of direct sunlight" in body["citations"][0]["quote"]

    with client.stream("POST", "/kbs/docs/ask", json={**question, "stream": True}) as r:
        events = sse_events(r)
    assert events[-1][0] == "done" and events[-1][1]["llm_error"] == reason
    assert events[-1][1]["citations"] == body["citations"]

    chat = {
        "model": "docs",
        "messages": [{"role": "user", "content": question["question"]}],
        "method": "bm25",
    }
    r = client.post("/v1/chat/completions", json=chat)
    assert r.status_code == 200, r.text  # was 502 with nothing else
    reply = r.json()
    content = reply["choices"][0]["message"]["content"]
    assert content.startswith(reason) and "[1] Gardening guide: " in content and "six hours" in content
    assert reply["llm_error"] == reason and reply["citations"][0]["n"] == 1
    with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as r:
        chunks = [data for _, data in sse_events(r)]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == content and chunks[-1]["llm_error"] == reason


def test_openai_usage_is_filled_in_characters(client: Any) -> None:
    client.post("/kbs", json={"name": "docs", "settings": SETTINGS})
    upload(client, "docs", [("garden.md", EN_GUIDE.encode())])
    question = "How much sunlight do tomatoes need?"
    reply = client.post(
        "/v1/chat/completions", json={"model": "docs", "messages": [{"role": "user", "content": question}]}
    ).json()
    usage = reply["usage"]
    content = reply["choices"][0]["message"]["content"]
    assert usage["unit"] == "characters" and usage["completion_tokens"] == len(content)
    assert usage["prompt_tokens"] > len(question)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


# -- conversations ----------------------------------------------------------------------------------


def _rewriting_reply(messages: list[dict[str, str]]) -> str:
    from zhiku.generate.prompts import DEFAULTS

    if messages[0]["content"] in (DEFAULTS["zh"].rewrite_system, DEFAULTS["en"].rewrite_system):
        return "Standalone query: When should roses be pruned?"
    return "See the guide [1]."


def test_conversations_rewrite_follow_ups_are_stored_and_survive_a_restart(tmp_path: Path) -> None:
    from tests.integration.fake_llm_server import FakeLLMServer

    home = tmp_path / "home"
    with FakeLLMServer() as llm:
        llm.reply = _rewriting_reply
        generator = {"kind": "ollama", "options": {"model": "qwen2.5:7b", "base_url": llm.url}}
        with live_server(home) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            client.post("/kbs", json={"name": KB, "settings": {**SETTINGS, "generator": generator}})
            upload(client, KB, [("garden.md", EN_GUIDE.encode())])
            c = client.post(f"/kbs/{K}/conversations", json={}).json()
            first = client.post(
                f"/kbs/{K}/ask",
                json={
                    "question": "How much sun do tomatoes need?",
                    "conversation": c["id"],
                    "method": "bm25",
                },
            ).json()
            assert first["query"] == first["question"]  # the first question is searched as asked
            assert first["conversation"]["title"] == "How much sun do tomatoes need?"
            with client.stream(
                "POST",
                f"/kbs/{K}/ask",
                json={
                    "question": "And when do I prune them?",
                    "conversation": c["id"],
                    "method": "bm25",
                    "stream": True,
                },
            ) as r:
                events = sse_events(r)
            assert events[0] == ("query", {"query": "When should roses be pruned?"})
            done = events[-1][1]
            assert done["query"] == "When should roses be pruned?" and done["conversation"]["turns"] == 2
            rewrite = [r.body["messages"] for r in llm.chat_requests()][1]
            assert "How much sun do tomatoes need?" in rewrite[1]["content"]
            assert "See the guide [1]." in rewrite[1]["content"]  # the history went with it

            # A client keeping its own history sends it; the OpenAI endpoint uses its messages.
            r = client.post(
                f"/kbs/{K}/ask",
                json={
                    "question": "and pruning?",
                    "method": "bm25",
                    "history": [{"question": "How much sun do tomatoes need?", "answer": "Six hours [1]."}],
                },
            ).json()
            assert r["query"] == "When should roses be pruned?"
            n = len(llm.chat_requests())
            client.post(
                "/v1/chat/completions",
                json={
                    "model": KB,
                    "method": "bm25",
                    "messages": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "How much sun do tomatoes need?"},
                        {"role": "assistant", "content": "Six hours [1]."},
                        {"role": "user", "content": "and pruning?"},
                    ],
                },
            )
            calls = [r.body["messages"] for r in llm.chat_requests()][n:]
            assert len(calls) == 2 and "Six hours [1]." in calls[0][1]["content"]
            assert "When should roses be pruned?" in calls[1][1]["content"]

        # A new server process over the same home still has the conversation.
        with live_server(home) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            listed = client.get(f"/kbs/{K}/conversations").json()
            assert [x["id"] for x in listed] == [c["id"]] and listed[0]["turns"] == 2
            shown = client.get(f"/kbs/{K}/conversations/{c['id']}").json()
            assert [t["question"] for t in shown["turns"]] == [
                "How much sun do tomatoes need?",
                "And when do I prune them?",
            ]
            assert shown["turns"][0]["citations"][0]["name"] == "garden.md"
            renamed = client.patch(f"/kbs/{K}/conversations/{c['id']}", json={"title": "花园 garden"}).json()
            assert renamed["title"] == "花园 garden"
            r = client.get(f"/kbs/{K}/conversations/{c['id']}/export")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
            assert "filename*=UTF-8''%E8%8A%B1%E5%9B%AD%20garden.md" in r.headers["content-disposition"]
            md = r.text
            assert md.startswith("# 花园 garden\n") and "## And when do I prune them?" in md
            assert "*Searched for: When should roses be pruned?*" in md
            assert "See the guide [1]." in md and "- [1] **Gardening guide" in md and "garden.md" in md
            assert client.delete(f"/kbs/{K}/conversations/{c['id']}").json() == {"deleted": c["id"]}
            assert client.get(f"/kbs/{K}/conversations").json() == []
            r = client.post(f"/kbs/{K}/ask", json={"question": "x", "conversation": c["id"]})
            assert r.status_code == 404


# -- settings and building ------------------------------------------------------------------------


def test_settings_pick_an_llm_keys_stay_on_the_server_and_zhiku_toml_is_reread(
    client: Any, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post("/kbs", json={"name": "docs", "settings": SETTINGS})
    upload(client, "docs", [("garden.md", EN_GUIDE.encode())])
    shown = client.get("/kbs/docs/settings").json()
    assert shown["settings"]["generator"]["kind"] == "extractive"
    assert shown["generator_kinds"] == ["extractive", "ollama", "openai"]

    monkeypatch.setenv("ZHIKU_TEST_KEY", "sk-secret-value")
    r = client.put(
        "/kbs/docs/settings",
        json={
            "generator": {
                "kind": "openai",
                "model": "deepseek-chat",
                "base_url": "http://127.0.0.1:9/v1",
                "api_key_env": "ZHIKU_TEST_KEY",
            },
            "default_method": "bm25",
            "chunking": {"size": 300},
        },
    )
    assert r.status_code == 200, r.text
    g = r.json()["settings"]["generator"]
    assert g["kind"] == "openai" and g["model"] == "deepseek-chat" and g["key"] == "$ZHIKU_TEST_KEY is set"
    assert r.json()["default_method"] == "bm25" and r.json()["settings"]["chunking"]["size"] == 300
    toml = server.state.kbs.get("docs").layout.config.read_text(encoding="utf-8")
    assert 'model = "deepseek-chat"' in toml and "sk-secret" not in toml
    assert client.get("/kbs/docs").json()["generator"] == "openai"  # the reader saw the change

    # A key someone wrote into zhiku.toml is never sent to the page.
    path = server.state.kbs.get("docs").layout.config
    path.write_text(
        toml.replace('api_key_env = "ZHIKU_TEST_KEY"', 'api_key = "sk-in-the-file"'), encoding="utf-8"
    )
    for route in ("/kbs/docs", "/kbs/docs/settings"):
        assert "sk-in-the-file" not in client.get(route).text
    assert client.get("/kbs/docs/settings").json()["settings"]["generator"]["key"] == "in zhiku.toml"

    # An edit by hand is picked up without a restart (mtime check).
    path.write_text(
        path.read_text(encoding="utf-8").replace('default_method = "bm25"', 'default_method = "dense"'),
        encoding="utf-8",
    )
    assert client.get("/kbs/docs").json()["default_method"] == "dense"

    r = client.put("/kbs/docs/settings", json={"generator": {"kind": "ollama", "model": ""}})
    assert r.status_code == 400 and "needs a model name" in r.json()["error"]["message"]
    r = client.put("/kbs/docs/settings", json={"generator": {"kind": "openai", "model": "m", "api_key": "x"}})
    assert r.status_code == 422  # keys cannot be sent at all
    r = client.put("/kbs/docs/settings", json={"default_method": "nope"})
    assert r.status_code == 400
    r = client.put("/kbs/docs/settings", json={"generator": {"kind": "extractive"}})
    assert r.json()["settings"]["generator"] == {
        "kind": "extractive",
        "model": "",
        "base_url": "",
        "api_key_env": "",
        "options": {},
        "key": "not needed",
    }


def test_build_a_method_as_a_job_with_progress(client: Any) -> None:
    settings = fast_config().model_dump(mode="json", exclude_none=True)
    settings["methods"]["dense"]["enabled"] = False
    client.post("/kbs", json={"name": "docs", "settings": settings})
    upload(client, "docs", [("garden.md", EN_GUIDE.encode()), ("法规.md", ZH_REGULATION.encode())])
    methods = {m["name"]: m for m in client.get("/kbs/docs/settings").json()["methods"]}
    assert methods["bm25"]["built"] and not methods["dense"]["built"]
    r = client.post("/kbs/docs/search", json={"query": "tomatoes", "method": "dense"})
    assert r.status_code >= 400

    r = client.post("/kbs/docs/methods/hybrid/build")  # a composite builds its parts
    assert r.status_code == 202 and r.headers["location"].startswith("/kbs/docs/jobs/")
    job = wait_job(client, "docs", r.json())
    assert job["state"] == "done" and "dense" in job["result"]["built"], job
    # embedding the chunks, then filling the index with their vectors: a counted phase each
    assert [p["name"] for p in job["phases"]] == ["build dense", "build dense: indexing"]
    assert job["progress"] == 1.0
    assert all(p["done"] == p["total"] > 0 for p in job["phases"])
    methods = {m["name"]: m for m in client.get("/kbs/docs/settings").json()["methods"]}
    assert methods["dense"]["built"] and methods["dense"]["enabled"] is True and methods["hybrid"]["built"]
    hits = client.post("/kbs/docs/search", json={"query": "tomatoes sunlight", "method": "hybrid"}).json()
    assert hits["hits"][0]["title"] == "Gardening guide"
    assert client.post("/kbs/docs/methods/nope/build").status_code == 400


# -- documents ------------------------------------------------------------------------------------


def test_documents_page_search_relative_names_and_delete_by_title(
    client: Any, server: LiveServer, tmp_path: Path
) -> None:
    from zhiku.service import KnowledgeBase

    folder = tmp_path / "laws"
    (folder / "zh").mkdir(parents=True)
    for i in range(25):
        (folder / "zh" / f"条例{i:02d}.md").write_text(
            f"# 条例第{i}号\n\n{ZH_REGULATION}\n\n附则{i}。", encoding="utf-8"
        )
    (folder / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    with KnowledgeBase.open("laws", home=server.state.settings.home, config=fast_config()) as kb:
        kb.ingest([folder])
    upload(client, "laws", [("上传.md", ZH_NOTES.encode())])

    r = client.get("/kbs/laws/documents", params={"offset": 0, "limit": 10})
    assert r.headers["x-total-count"] == "27" and len(r.json()) == 10
    names = [d["name"] for d in client.get("/kbs/laws/documents").json()]
    assert "garden.md" in names and "zh/条例00.md" in names and "上传.md" in names
    assert not any(n.startswith("/") for n in names)  # no server paths in the table
    page2 = client.get("/kbs/laws/documents", params={"offset": 10, "limit": 10}).json()
    assert [d["name"] for d in page2] == names[10:20]

    found = client.get("/kbs/laws/documents", params={"q": "条例第1"})  # by title, any part
    assert found.headers["x-total-count"] == "11"  # 第1号 and 第10…19号
    assert found.json()[0]["title"] == "条例第1号"  # the exact match first
    assert [d["name"] for d in client.get("/kbs/laws/documents", params={"q": "GARDEN"}).json()] == [
        "garden.md"
    ]

    doc = client.get("/kbs/laws/documents", params={"q": "garden"}).json()[0]
    shown = client.get(f"/kbs/laws/documents/{doc['id']}").json()
    assert shown["name"] == "garden.md" and [c["ord"] for c in shown["chunks"]] == list(
        range(len(shown["chunks"]))
    )

    ids = [d["id"] for d in found.json()]
    r = client.post("/kbs/laws/documents/delete", json={"ids": ids})
    assert r.status_code == 200 and len(r.json()["deleted"]) == 11
    assert client.get("/kbs/laws/documents").headers["x-total-count"] == "16"
    hits = client.post("/kbs/laws/search", json={"query": "附则15", "method": "bm25", "k": 30}).json()["hits"]
    assert all(h["title"] not in {"条例第1号", "条例第15号"} for h in hits)
    assert client.post("/kbs/laws/documents/delete", json={"ids": ["nope"]}).status_code == 404
