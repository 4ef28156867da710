"""Issue 14 (1): a killed ingest must not leave the KB locked, nor worker processes behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.crashkit import descendants, init_kb, make_corpus, run, start, wait_gone

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_ingest_leaves_no_lock_and_no_workers(tmp_path: Path, sig: int) -> None:
    home = tmp_path / "home"
    corpus = tmp_path / "corpus"
    # Large enough for worker processes (>= 8 files, >= 2 MB) and to take several seconds.
    make_corpus(corpus, files=48, kb_per_file=60, seed=1)
    init_kb(home, workers=2)

    proc = start(home, "ingest", str(corpus), "--kb", "k")
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        workers = descendants(proc.pid)
        time.sleep(0.05)
    time.sleep(0.5)
    # It really was mid-way: still running, with its workers.
    assert proc.poll() is None, proc.communicate()
    workers = descendants(proc.pid)
    assert len(workers) >= 2, "the ingest never started worker processes"
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)

    left = wait_gone(workers, timeout=10)
    for pid in left:  # do not leave them running on a failure
        os.kill(pid, signal.SIGKILL)
    assert not left, "worker processes outlived the killed ingest"
    t0 = time.monotonic()
    again = run(home, "ingest", str(corpus), "--kb", "k", timeout=600)
    assert again.returncode == 0, again.stderr
    assert "being changed by another process" not in again.stderr
    assert time.monotonic() - t0 < 600
