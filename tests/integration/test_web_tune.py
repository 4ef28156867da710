"""The Tune panel in a real browser (Playwright driving Debian's Chromium, headless) against the app
under Uvicorn: questions, an adapter and the route run as jobs, their progress, the before/after
table. The screenshot goes to $ZHIKU_SCREENSHOTS (default: the pytest tmp dir).

Skipped, with the reason, when Playwright or Chromium is missing (as test_web_page.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web page is served by the API, which needs fastapi and uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from tests.helpers.law_corpus import law_documents, tune_config  # noqa: E402
from tests.helpers.live_server import LiveServer, live_server  # noqa: E402
from tests.integration.test_web_page import pytestmark  # noqa: E402, F401  (the same skip)

from zhiku.config import KBConfig  # noqa: E402

expect = sync_api.expect
JOB_MS = 180_000  # a tune job on a busy 2-core machine: expect()'s default 5 s is for page updates


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[LiveServer]:
    from zhiku.service import KnowledgeBase

    home = tmp_path / "home"
    with KnowledgeBase.open("laws", home=home, config=tune_config()) as kb:
        kb.add_texts(law_documents(n_docs=10, articles=5))
    with live_server(home) as s:
        yield s


def test_tune_panel_runs_jobs_and_shows_the_before_after_table(
    server: LiveServer, browser: Any, shots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        context.set_default_timeout(120_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.add_init_script(f"localStorage.setItem('zhiku.kb', {json.dumps('laws')})")
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")

        page.click("#tab-tune")
        expect(page.locator("#tune-question-state")).to_have_text("No questions yet: generate them first.")
        expect(page.locator("#tune-adapter-run")).to_be_disabled()
        expect(page.locator("#tune-base option")).to_have_count(1)

        # 1. Questions: a job whose row ends "Done: N questions kept".
        page.click("#tune-questions-run")
        row = page.locator("#tune-jobs .build[data-step='questions']")
        expect(row).to_have_class(re.compile(r"\bdone\b"), timeout=JOB_MS)
        expect(row.locator(".build-label")).to_contain_text(re.compile(r"Done: \d+ questions kept"))
        expect(page.locator("#tune-question-state")).to_contain_text(
            re.compile(r"\d+ train and \d+ validation")
        )

        # 2. The adapter: progress, then the before/after table with the tuned row marked.
        page.fill("#tune-epochs", "4")
        page.click("#tune-adapter-run")
        row = page.locator("#tune-jobs .build[data-step='adapter']")
        expect(row).to_have_class(re.compile(r"\bdone\b"), timeout=JOB_MS)
        expect(page.locator("#tune-result")).to_be_visible()
        expect(page.locator("#tune-table tbody tr[data-method='dense-tuned']")).to_have_class("tuned")
        expect(page.locator("#tune-table tbody tr[data-method='dense']")).to_have_count(1)
        expect(page.locator("#tune-table thead th")).to_have_count(6)
        expect(page.locator("#tune-decision")).to_contain_text(re.compile(r"Default (is now|stays) "))
        expect(page.locator("#tune-links a")).to_have_count(3)
        cfg = KBConfig.load(server.state.settings.home / "laws" / "zhiku.toml")
        assert "dense-tuned" in cfg.methods
        page.screenshot(path=str(shots / "tune.png"), full_page=True)

        # 3. The route: the table now compares the candidates; the state line shows the choice.
        page.click("#tune-route-run")
        row = page.locator("#tune-jobs .build[data-step='route']")
        expect(row).to_have_class(re.compile(r"\bdone\b"), timeout=JOB_MS)
        expect(page.locator("#tune-table tbody tr[data-method='bm25']")).to_have_count(1)
        expect(page.locator("#tune-route-state")).to_contain_text("Last choice:")
        page.screenshot(path=str(shots / "tune-route.png"), full_page=True)

        # The panel speaks Chinese too.
        page.click("#lang-button")
        expect(page.locator("#tab-tune")).to_have_text("调优")
        expect(page.locator("#tune-route-run")).to_have_text("选择默认方法")
        assert errors == []
    finally:
        context.close()
