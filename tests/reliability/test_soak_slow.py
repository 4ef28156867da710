"""Issue 28 (2): a short soak (about a minute, 3 SIGKILLs) of ``benchmarks/soak.py``: concurrent
uploads (good and bad files), searches, asks, chats, deletes and evaluations against a real ``zhiku
serve`` that is killed and restarted; every acknowledged write must hold afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
def test_short_soak_with_kills_loses_no_acknowledged_write(tmp_path: Path) -> None:
    pytest.importorskip("httpx2")
    from benchmarks.soak import soak

    r = soak(minutes=1.0, kills=3, clients=3, seed=7, work=tmp_path, log=False)
    assert r["kills"] >= 3
    assert r["uploads_acknowledged"] > 20, r["requests"]
    assert r["uploads_found"] == r["uploads_acknowledged"], r["uploads_missing"]
    assert r["deletes_gone"] == r["deletes_acknowledged"], r["deletes_still_found"]
    assert r["check"]["ok"], r["check"]
    assert r["lock_free_after_stop"]
    assert not r["server_errors"], r["server_errors"]
    assert r["server_log_tracebacks"] == 0, r["server_log_tracebacks_text"]
    assert not r["bad_files_accepted"] and not r["client_errors"]
    assert r["passed"]
