"""Fixtures shared by the browser tests (test_web_*.py): one Chromium per test module, and the
folder screenshots go to ($ZHIKU_SCREENSHOTS, or a temp folder). Each test module keeps its own
skip (``pytestmark`` from test_web_page.py) for machines without Chromium or Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api
    from tests.integration.test_web_page import CHROMIUM, CHROMIUM_ARGS

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = Path(os.environ.get("ZHIKU_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out
