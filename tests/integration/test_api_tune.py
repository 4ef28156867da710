"""Tune jobs over real HTTP: offline questions, an adapter and the route as background jobs with
phase progress, their before/after tables, and the reports they leave, against the app under
Uvicorn on loopback (hashing vectors and BM25 on a small synthetic law corpus: fast)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
pytest.importorskip("uvicorn", reason="the web API needs uvicorn")
httpx = pytest.importorskip("httpx2", reason="the API tests use the httpx2 client (installed with openai)")

from tests.helpers.law_corpus import law_documents, tune_config  # noqa: E402
from tests.helpers.live_server import LiveServer, live_server, wait_job  # noqa: E402

from zhiku.config import KBConfig  # noqa: E402


def home_with_laws(home: Path) -> Path:
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open("laws", home=home, config=tune_config()) as kb:
        kb.add_texts(law_documents(n_docs=10, articles=5))
    return home


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(home_with_laws(tmp_path_factory.mktemp("tune") / "home")) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[Any]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def phases(job: dict[str, Any]) -> list[str]:
    return [p["name"] for p in job["phases"]]


def test_tune_jobs_questions_adapter_route(client: Any, server: LiveServer) -> None:
    status = client.get("/kbs/laws/tune").json()
    assert status["questions"] is None and status["runs"] == []
    assert "dense" in {b["name"] for b in status["bases"]}
    assert "bm25" not in {b["name"] for b in status["bases"]}  # not a vector method

    # Without questions, an adapter job fails with a one-line error that says what to do.
    job = client.post("/kbs/laws/tune/adapter", params={"wait": "true"}, json={"base": "dense"}).json()
    assert job["state"] == "failed" and job["error"]["code"] == "not_found"
    assert "zhiku tune questions" in job["error"]["message"]

    # Questions: 202 at once with the job's URL, then followed to the end.
    r = client.post("/kbs/laws/tune/questions", json={"kinds": ["ict", "keywords"]})
    assert r.status_code == 202 and r.headers["location"] == f"/kbs/laws/jobs/{r.json()['id']}"
    job = wait_job(client, "laws", r.json(), timeout=120)
    assert job["state"] == "done", job
    assert job["kind"] == "tune-questions" and phases(job) == ["tune generate", "tune filter (bm25)"]
    assert job["progress"] == 1.0 and all(p["done"] == p["total"] for p in job["phases"])
    q = job["result"]
    assert q["step"] == "questions" and q["kept"] == q["train"] + q["validation"] > 30
    assert set(q["by_generator"]) == {"offline:ict", "offline:keywords"}
    status = client.get("/kbs/laws/tune").json()
    assert status["questions"]["train"] == q["train"] and status["questions"]["validation"] == q["validation"]

    # The adapter: trained, validated, its before/after table returned, its reports served.
    r = client.post("/kbs/laws/tune/adapter", json={"base": "dense", "epochs": 4})
    assert r.status_code == 202
    job = wait_job(client, "laws", r.json(), timeout=300)
    assert job["state"] == "done", job
    incumbent = job["result"]["decision"]["incumbent"]
    # Training, then one validation phase per method compared.
    assert phases(job)[0] == "tune train"
    assert set(phases(job)[1:]) == {f"tune validate {m}" for m in ("dense", "dense-tuned", incumbent)}
    a = job["result"]
    assert [row["method"] for row in a["table"]] == list(dict.fromkeys(["dense", "dense-tuned", incumbent]))
    assert all("mrr@10" in row["metrics"] for row in a["table"])
    # results.json's content, less the per-question rows (those stay in the file).
    assert [m["method"] for m in a["results"]["methods"]] == [row["method"] for row in a["table"]]
    assert all("per_query" not in m for m in a["results"]["methods"])
    assert a["results"]["methods"][1]["metrics"]["mrr@10"] == pytest.approx(
        a["table"][1]["metrics"]["mrr@10"], abs=1e-4
    )
    full = client.get(a["links"]["results"]).json()
    assert full["methods"][0]["per_query"]
    report = client.get(a["links"]["report"])
    assert report.headers["content-type"].startswith("text/markdown") and "default:" in report.text
    chart = client.get(a["links"]["chart"])
    assert chart.headers["content-type"] == "image/png" and chart.content[:4] == b"\x89PNG"
    home = server.state.settings.home
    cfg = KBConfig.load(home / "laws" / "zhiku.toml")
    assert cfg.methods["dense-tuned"].kind == "adapted"
    assert (
        (cfg.default_method == "dense-tuned")
        == a["decision"]["significant"]
        == (a["default_method"] == "dense-tuned")
    )
    assert (home / "laws" / "models" / "dense-tuned" / "manifest.json").is_file()
    # The server's reader sees the new method at once (zhiku.toml changed: it reopens).
    hits = client.post("/kbs/laws/search", json={"query": "保险 理赔", "k": 3, "method": "dense-tuned"})
    assert hits.status_code == 200, hits.text

    # The route: the default chosen on validation, with its evidence, recorded in zhiku.toml.
    job = client.post(
        "/kbs/laws/tune/route", params={"wait": "true"}, json={"methods": ["bm25", "dense"]}
    ).json()
    assert job["state"] == "done", job
    assert phases(job) == ["tune search", "tune fuse"]
    rt = job["result"]
    assert rt["step"] == "route" and rt["chosen"] and rt["why"]
    assert {"bm25", "dense"} <= {row["method"] for row in rt["table"]}
    assert KBConfig.load(home / "laws" / "zhiku.toml").route["chosen"] == rt["chosen"]
    status = client.get("/kbs/laws/tune").json()
    assert status["route"]["chosen"] == rt["chosen"]
    assert {r["run"] for r in status["runs"]} == {a["run"], rt["run"]}


def test_tune_requests_are_checked(client: Any) -> None:
    r = client.post("/kbs/laws/tune/adapter", json={"base": "dense", "kind": "cubic"})
    assert r.status_code == 422
    r = client.post("/kbs/laws/tune/questions", json={"kinds": ["ict"], "validation": 1.5})
    assert r.status_code == 422
    r = client.get("/kbs/laws/tune/runs/0123456789ab/report")
    assert r.status_code == 404 and "GET /kbs/laws/tune" in r.json()["error"]["message"]
    r = client.get("/kbs/laws/tune/runs/..%2F..%2Fzhiku.toml/results")
    assert r.status_code == 404
    assert client.post("/kbs/nope/tune/route", json={}).status_code == 404
