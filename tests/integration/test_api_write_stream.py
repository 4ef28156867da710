"""Issue 28 (3): the server's write stream. Uploads and deletes that arrive while an ingest runs are
acknowledged at once (202, never 423), applied together in the next writer session, and end up
searchable (or gone); a writer process killed mid-ingest leaves a KB that the next command puts
back in order (``zhiku check`` clean)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
httpx = pytest.importorskip("httpx2", reason="the API tests use the httpx2 client (installed with openai)")

from tests.helpers.corpus import fast_config  # noqa: E402
from tests.helpers.crashkit import (  # noqa: E402
    catalog_problems,
    descendants,
    free_port,
    init_kb,
    make_corpus,
    run,
    start_server,
    upload_parts,
    uploads_problems,
)
from tests.helpers.live_server import LiveServer, live_server, wait_job  # noqa: E402

SETTINGS = fast_config().model_dump(mode="json", exclude_none=True)


def upload(client: Any, kb: str, files: list[tuple[str, str]], wait: bool = False) -> Any:
    parts = [("files", (name, text.encode(), "text/markdown")) for name, text in files]
    return client.post(f"/kbs/{kb}/documents", params={"wait": "true"} if wait else {}, files=parts)


def search_texts(client: Any, kb: str, query: str) -> list[str]:
    r = client.post(f"/kbs/{kb}/search", json={"query": query, "k": 5, "method": "bm25"})
    assert r.status_code == 200, r.text
    return [h["text"] for h in r.json()["hits"]]


class HeldBuild:
    """Holds the first index build of the writer session until released: an ingest surely running."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from zhiku.service import KnowledgeBase

        self.entered = threading.Event()
        self.release = threading.Event()
        build = KnowledgeBase._build_locked

        def held(kb: KnowledgeBase, *args: Any) -> Any:
            if not self.release.is_set():
                self.entered.set()
                assert self.release.wait(60), "the test never released the build"
            return build(kb, *args)

        monkeypatch.setattr(KnowledgeBase, "_build_locked", held)


@pytest.fixture
def stream_server(tmp_path: Path) -> Iterator[LiveServer]:
    # In-process writer: the test holds its build (a monkeypatch does not reach a child process).
    with live_server(tmp_path / "home", writer_process=False) as s:
        yield s


def test_writes_during_an_ingest_are_acknowledged_batched_and_applied(
    stream_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=stream_server.url, timeout=60) as client:
        assert client.post("/kbs", json={"name": "k", "settings": SETTINGS}).status_code == 201
        seed = upload(client, "k", [("old.md", "# Old\n\nquokkaold stays until deleted")], wait=True)
        assert seed.status_code == 200 and seed.json()["state"] == "done", seed.text
        old_id = seed.json()["result"]["ids"]["old.md"]
        held = HeldBuild(monkeypatch)

        first = upload(client, "k", [("first.md", "# First\n\nwombatfirst arrives first")])
        assert first.status_code == 202, first.text
        assert held.entered.wait(60), "the first ingest never reached its build"
        # While it builds: two more uploads and a delete, all acknowledged at once.
        second = upload(client, "k", [("second.md", "# Second\n\nnumbatsecond arrives during it")])
        third = upload(client, "k", [("third.md", "# Third\n\nbilbythird arrives during it too")])
        gone = client.delete(f"/kbs/k/documents/{old_id}")
        assert second.status_code == 202 and third.status_code == 202, (second.text, third.text)
        assert gone.status_code == 202 and gone.json()["deleted"]["id"] == old_id, gone.text
        for queued in (second, third, gone):
            assert client.get(f"/kbs/k/jobs/{queued.json()['id']}").json()["state"] == "queued"
        # Readers are not blocked meanwhile, and see the last complete index.
        assert any("quokkaold" in t for t in search_texts(client, "k", "quokkaold"))
        held.release.set()

        jobs = [wait_job(client, "k", r.json()) for r in (first, second, third, gone)]
        assert [j["state"] for j in jobs] == ["done"] * 4, jobs
        # The three that queued were applied together: one writer session, one build.
        batch = jobs[1]["result"]["batch"]
        assert set(batch) == {jobs[1]["id"], jobs[2]["id"], jobs[3]["id"]} == set(jobs[2]["result"]["batch"])
        assert jobs[0]["result"]["batch"] == [jobs[0]["id"]]
        assert jobs[1]["result"]["added"] == ["second.md"] and "bm25" in jobs[1]["result"]["built"]
        for word in ("wombatfirst", "numbatsecond", "bilbythird"):
            assert any(word in t for t in search_texts(client, "k", word)), word
        assert not any("quokkaold" in t for t in search_texts(client, "k", "quokkaold"))
        names = [d["name"] for d in client.get("/kbs/k/documents").json()]
        assert sorted(names) == ["first.md", "second.md", "third.md"]
        check = client.get("/kbs/k/check").json()
        assert check["ok"], check


def test_a_delete_answers_200_when_nothing_is_queued_and_can_wait_behind_an_ingest(
    stream_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=stream_server.url, timeout=60) as client:
        assert client.post("/kbs", json={"name": "k", "settings": SETTINGS}).status_code == 201
        files = [(f"d{i}.md", f"# D{i}\n\nmarker{i}zz text") for i in range(3)]
        ids = upload(client, "k", files, wait=True).json()["result"]["ids"]
        r = client.delete(f"/kbs/k/documents/{ids['d0.md']}")
        assert r.status_code == 200 and r.json()["deleted"]["name"] == "d0.md", r.text
        assert not search_texts(client, "k", "marker0zz")

        held = HeldBuild(monkeypatch)
        busy = upload(client, "k", [("busy.md", "# Busy\n\nbusy")])
        assert held.entered.wait(60)
        answer: dict[str, Any] = {}
        body = {"ids": [ids["d1.md"]]}
        body = {"ids": [ids["d1.md"]]}
        waiter = threading.Thread(
            target=lambda: answer.update(
                r=client.post("/kbs/k/documents/delete", params={"wait": "true"}, json=body)
            )
        )
        waiter.start()
        time.sleep(0.2)  # most likely queued behind the held build by now; 200 either way
        held.release.set()
        waiter.join(60)
        assert answer["r"].status_code == 200, answer["r"].text
        assert [d["name"] for d in answer["r"].json()["deleted"]] == ["d1.md"]
        assert wait_job(client, "k", busy.json())["state"] == "done"
        assert not search_texts(client, "k", "marker1zz")
        assert search_texts(client, "k", "marker2zz")


# -- the real writer process --------------------------------------------------------------------------

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _writer_pid(server_pid: int) -> int | None:
    """The server's writer process: its child (the writer's own ingest workers, forked, share its
    command line)."""
    for pid in descendants(server_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            parent = int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"zhiku.api.writer_process" in cmdline and parent == server_pid:
            return pid
    return None


@needs_proc
def test_a_killed_writer_process_leaves_a_kb_the_next_command_recovers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed = make_corpus(tmp_path / "seed", files=1, kb_per_file=2, seed=2, marker="SEED")
    init_kb(home, workers=2)
    assert run(home, "ingest", str(seed[0]), "--kb", "k").returncode == 0
    # Large enough that the writer is surely mid-ingest when killed (the loop below waits for it).
    corpus = make_corpus(tmp_path / "corpus", files=48, kb_per_file=60, seed=3)
    port = free_port()
    server = start_server(home, port, log=tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            r = client.post("/kbs/k/documents", files=upload_parts(corpus))
            assert r.status_code == 202, r.text
            job = r.json()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                job = client.get(f"/kbs/k/jobs/{job['id']}").json()
                if job["state"] != "running" or (job["phase"] == "ingest" and job["done"] > 0):
                    break
                time.sleep(0.05)
            assert job["state"] == "running" and job["done"] < job["total"], job
            writer = _writer_pid(server.pid)
            assert writer is not None, "no writer process under the server"
            below = descendants(writer)
            os.kill(writer, signal.SIGKILL)

            job = wait_job(client, "k", job, timeout=60)
            assert job["state"] == "failed" and job["error"]["code"] == "interrupted", job
            assert client.get("/healthz").status_code == 200  # the server itself is fine
            assert uploads_problems(home / "k"), "the kill left nothing to recover: nothing was tested"
            deadline = time.monotonic() + 30
            while any(Path(f"/proc/{p}").exists() for p in below) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not any(Path(f"/proc/{p}").exists() for p in below), "the writer's workers outlived it"

            # The next command (an upload, by a fresh writer process) recovers the KB first.
            r = client.post(
                "/kbs/k/documents",
                params={"wait": "true"},
                files=[("files", ("after.md", "# After\n\nzebraafter 之后".encode(), "text/markdown"))],
            )
            assert r.status_code == 200 and r.json()["state"] == "done", r.text
            assert uploads_problems(home / "k") == []
            assert catalog_problems(home / "k" / "catalog.sqlite") == []
            for word in ("zebraafter", "SEED0"):
                hits = client.post("/kbs/k/search", json={"query": word, "k": 3}).json()["hits"]
                assert any(word in h["text"] for h in hits), (word, hits)
        check = run(home, "check", "--kb", "k")
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
