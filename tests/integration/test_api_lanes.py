"""The server's CPU lane (``api/lanes.py``): searches and offline answers run at most
``CPU_THREADS`` at a time, and a request that waits on a language model never takes the lane, so
it cannot stall the searches behind it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
httpx = pytest.importorskip("httpx2", reason="the API tests use the httpx2 client (installed with openai)")

from tests.helpers.corpus import EN_GUIDE, fast_config  # noqa: E402
from tests.helpers.live_server import LiveServer, live_server  # noqa: E402
from tests.integration.fake_llm_server import FakeLLMServer  # noqa: E402

from zhiku.api import lanes  # noqa: E402
from zhiku.config import GeneratorConfig, KBConfig, MethodConfig, RerankConfig  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402

QUESTION = {"question": "How much sun do tomatoes need?", "method": "bm25"}


def test_only_work_done_in_this_process_takes_the_cpu_lane() -> None:
    offline = KBConfig()  # the defaults: BM25, e5 and MiniLM in Faiss, their hybrid
    assert lanes.cpu_bound(offline, answers=False) and lanes.cpu_bound(offline, answers=True)
    llm = KBConfig(generator=GeneratorConfig(kind="ollama", options={"model": "qwen2.5:7b"}))
    assert lanes.cpu_bound(llm, answers=False)  # its searches compute here
    assert not lanes.cpu_bound(llm, answers=True)  # its answers wait on the LLM
    for kind in ("remote", "llm"):  # a rerank server or an LLM reranker: searches wait too
        reranked = KBConfig(rerank=RerankConfig(kind=kind))
        assert not lanes.cpu_bound(reranked, answers=False)
        assert not lanes.cpu_bound(reranked, answers=True)
    local = KBConfig(rerank=RerankConfig(kind="cross-encoder"))
    assert lanes.cpu_bound(local, answers=False) and lanes.cpu_bound(local, answers=True)
    assert not lanes.cpu_bound(None, answers=False)  # settings that cannot be read: the default pool


@pytest.mark.parametrize(
    ("method", "here"),
    [
        (MethodConfig(kind="tfidf"), True),
        (MethodConfig(kind="dense", options={"embedder": "hashing", "dim": 64}), True),
        (MethodConfig(kind="dense", options={"index": "milvus"}), True),  # Milvus Lite: a file
        (
            MethodConfig(
                kind="dense", options={"index": "milvus", "index_options": {"uri": "http://m:19530"}}
            ),
            False,
        ),
        (
            MethodConfig(
                kind="dense", options={"index": "qdrant", "index_options": {"url": "http://q:6333"}}
            ),
            False,
        ),
        (
            MethodConfig(
                kind="bm25", options={"index": "milvus", "index_options": {"uri": "http://m:19530"}}
            ),
            False,
        ),
        (MethodConfig(kind="dense", options={"embedder": "ollama"}), False),  # its URL from the environment
        (
            MethodConfig(kind="dense", options={"embedder": "openai", "model": "text-embedding-3-small"}),
            False,
        ),
        (MethodConfig(kind="remote", options={"model": "bge-m3"}), False),
        (MethodConfig(kind="prompt-llm"), False),
        (MethodConfig(kind="fusion", options={"llm": "ollama:qwen2.5:7b"}), False),  # an LLM writes queries
        (MethodConfig(kind="a-plugin"), False),  # unknown: may wait
    ],
)
def test_one_method_that_may_wait_keeps_the_kb_out_of_the_lane(method: MethodConfig, here: bool) -> None:
    config = KBConfig(methods={**KBConfig().methods, "extra": method})
    assert lanes.cpu_bound(config, answers=False) is here
    assert lanes.cpu_bound(config, answers=True) is here


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(tmp_path: Path, llm: FakeLLMServer) -> Iterator[LiveServer]:
    home = tmp_path / "home"
    generator = GeneratorConfig(kind="ollama", options={"model": "qwen2.5:7b", "base_url": llm.url})
    for name, config in (("offline", fast_config()), ("llm", fast_config(generator=generator))):
        with KnowledgeBase.open(name, home=home, config=config) as kb:
            kb.add_texts([("garden.md", "Gardening guide", EN_GUIDE)])
    with live_server(home) as s:
        yield s


def wait_until(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def post_all(url: str, path: str, body: dict[str, Any], n: int) -> tuple[list[threading.Thread], list[int]]:
    statuses: list[int] = []

    def one() -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            statuses.append(c.post(path, json=body).status_code)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, statuses


def test_answers_waiting_on_an_llm_leave_the_searches_free(server: LiveServer, llm: FakeLLMServer) -> None:
    release = threading.Event()
    waiting = threading.Semaphore(0)

    def slow_reply(messages: list[dict[str, str]]) -> str:
        waiting.release()
        release.wait(120)
        return "Six hours of sun [1]."

    llm.reply = slow_reply
    n = lanes.CPU_THREADS + 2  # more than the lane holds
    threads, statuses = post_all(server.url, "/kbs/llm/ask", QUESTION, n)
    try:
        for _ in range(n):  # every answer is now waiting on the LLM
            assert waiting.acquire(timeout=60), "the LLM never received every question"
        # Were those answers in the CPU lane, it would be full and these would wait for the LLM.
        with httpx.Client(base_url=server.url, timeout=30) as c:
            r = c.post("/kbs/offline/search", json={"query": "tomatoes sun", "method": "bm25"})
            assert r.status_code == 200 and r.json()["hits"]
            r = c.post("/kbs/llm/search", json={"query": "tomatoes sun", "method": "bm25"})
            assert r.status_code == 200 and r.json()["hits"][0]["title"] == "Gardening guide"
            r = c.post("/kbs/offline/ask", json=QUESTION)
            assert r.status_code == 200 and r.json()["generator"] == "extractive"
    finally:
        release.set()
        for t in threads:
            t.join(120)
    assert statuses == [200] * n


def test_the_cpu_lane_runs_at_most_its_threads(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from zhiku.api.routers import search as route

    running, most = [0], [0]
    lock, release = threading.Lock(), threading.Event()
    real = route.search_json

    def held(*args: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            release.wait(120)
            return real(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(route, "search_json", held)
    n = lanes.CPU_THREADS + 3
    threads, statuses = post_all(
        server.url, "/kbs/offline/search", {"query": "tomatoes", "method": "bm25"}, n
    )
    try:
        wait_until(lambda: running[0] >= lanes.CPU_THREADS, "the lane to fill")
        time.sleep(0.5)  # the others are queued, not running: a fifth would have entered by now
        assert most[0] == lanes.CPU_THREADS
        # Another KB has a lane of its own: its search is not queued behind this one's.
        with httpx.Client(base_url=server.url, timeout=30) as c:
            monkeypatch.setattr(route, "search_json", real)
            r = c.post("/kbs/llm/search", json={"query": "tomatoes sun", "method": "bm25"})
            assert r.status_code == 200 and r.json()["hits"]
    finally:
        release.set()
        for t in threads:
            t.join(120)
    assert statuses == [200] * n and most[0] == lanes.CPU_THREADS
