"""A few kill -9s through benchmarks/crash.py (one per scenario): the standing crash check in a
bounded budget. The full ≥ 50-kill run is `python benchmarks/crash.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc"),
]


def test_kills_at_random_moments_leave_a_consistent_kb(tmp_path: Path) -> None:
    pytest.importorskip("httpx2")
    from benchmarks.crash import SCENARIOS, crash_run

    report = crash_run(kills=len(SCENARIOS), seed=7, work=tmp_path, files=12, kb_per_file=40, log=False)
    assert len(report.kills) == len(SCENARIOS), report.missed
    bad = [k for k in report.kills if not (k.consistent and k.next_ok)]
    assert not bad, bad
