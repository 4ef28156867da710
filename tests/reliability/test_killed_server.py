"""Issue 14 (1, 2): a server killed mid-upload leaves no workers, no lock, and the next start puts
uploads/, the staging area and the runs table back in order."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.crashkit import (
    catalog_problems,
    descendants,
    free_port,
    init_kb,
    make_corpus,
    run,
    start_server,
    upload_parts,
    uploads_problems,
    wait_gone,
)

httpx2 = pytest.importorskip("httpx2")
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def test_server_killed_mid_upload_recovers_at_next_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_doc = make_corpus(tmp_path / "seed", files=1, kb_per_file=2, seed=2, marker="SEED")
    init_kb(home, workers=2)
    assert run(home, "ingest", str(seed_doc[0]), "--kb", "k").returncode == 0
    corpus = make_corpus(tmp_path / "corpus", files=48, kb_per_file=60, seed=3)

    port = free_port()
    server = start_server(home, port)
    url = f"http://127.0.0.1:{port}"
    try:
        r = httpx2.post(f"{url}/kbs/k/documents", files=upload_parts(corpus), timeout=120)
        assert r.status_code == 202, r.text
        job = r.json()
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = httpx2.get(f"{url}/kbs/k/jobs/{job['id']}", timeout=10).json()
            workers = descendants(server.pid)
            if job["state"] != "running" or (job["phase"] == "ingest" and job["done"] > 0 and workers):
                break
            time.sleep(0.05)
        # Mid-way: ingesting with worker processes, not finished.
        assert job["state"] == "running" and job["done"] < job["total"], job
        assert workers
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    left = wait_gone(workers, timeout=10)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "worker processes outlived the killed server"
    kb = home / "k"
    assert uploads_problems(kb), "the kill left nothing to recover: the test did not test anything"

    server = start_server(home, port)
    try:
        assert uploads_problems(kb) == []
        assert catalog_problems(kb / "catalog.sqlite") == []
        r = httpx2.post(
            f"{url}/kbs/k/documents", params={"wait": "true"}, files=upload_parts(corpus[:3]), timeout=300
        )
        assert r.status_code == 200 and r.json()["state"] == "done", r.text
        hits = httpx2.post(f"{url}/kbs/k/search", json={"query": "SEED0 独有标记", "k": 3}, timeout=60)
        assert hits.status_code == 200, hits.text
        assert any("SEED0" in h["text"] for h in hits.json()["hits"]), hits.json()
    finally:
        server.kill()
        server.wait(timeout=30)
