"""The reranker picked in the page's Settings (issue 15), in a real browser: a bad URL is refused
with the server's one line, a rerank server on loopback is saved to zhiku.toml, and then the
retrieval lab and the chat say their hits were reranked, in the server's order. Screenshots go to
$ZHIKU_SCREENSHOTS (``settings-rerank.png``, ``lab-reranked.png``).

Same setup as test_web_page.py (Debian's Chromium driven by Playwright; skipped without them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web page is served by the API, which needs fastapi and uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION, fast_config  # noqa: E402
from tests.helpers.live_server import live_server  # noqa: E402
from tests.integration.fake_rerank_server import FakeRerankServer  # noqa: E402
from tests.integration.test_api_rerank_settings import CLAIMS, Q  # noqa: E402
from tests.integration.test_web_page import (  # noqa: E402, F401  (pytestmark: the same skip)
    CHROMIUM,
    CHROMIUM_ARGS,
    open_page,
    pytestmark,
)

from zhiku.config import KBConfig  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402

expect = sync_api.expect


def _home(tmp_path: Path) -> Path:
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    (docs / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    for name, text in CLAIMS.items():
        (docs / name).write_text(text, encoding="utf-8")
    with KnowledgeBase.open("docs", home=home, config=fast_config()) as kb:
        kb.ingest([docs])
    return home


def test_settings_pick_a_reranker_and_search_reports_it(browser: Any, tmp_path: Path, shots: Path) -> None:
    home = _home(tmp_path)
    toml = home / "docs" / "zhiku.toml"
    with FakeRerankServer() as rr, live_server(home) as server:
        page = open_page(browser, server)
        page.click("#tab-settings")
        expect(page.locator("#rr-kind")).to_have_value("none")
        expect(page.locator("#rr-base-url")).to_be_hidden()
        expect(page.locator("#gen-model")).to_be_hidden()  # extractive: no LLM fields either

        # The fields follow the kind.
        page.select_option("#rr-kind", "cross-encoder")
        expect(page.locator("#rr-model-dir")).to_be_visible()
        expect(page.locator("#rr-base-url")).to_be_hidden()
        page.select_option("#rr-kind", "remote")
        expect(page.locator("#rr-base-url")).to_be_visible()
        expect(page.locator("#rr-model-dir")).to_be_hidden()

        # A bad URL: the server's one line, and zhiku.toml is not touched.
        before = toml.read_bytes()
        page.fill("#rr-base-url", "ftp://example.org")
        page.click("#rerank-save")
        expect(page.locator("#notice")).to_contain_text("is not an http(s) URL")
        assert toml.read_bytes() == before

        page.fill("#rr-base-url", rr.url)
        page.select_option("#rr-api", "tei")
        page.fill("#rr-top-n", "3")
        page.click("#rerank-save")
        expect(page.locator("#notice")).to_have_text("Settings saved.")
        saved = KBConfig.load(toml).rerank
        assert saved.kind == "remote" and saved.top_n == 3 and saved.threshold is None
        assert saved.options == {"api": "tei", "base_url": rr.url}
        page.reload()  # what the page shows is what the server kept
        page.wait_for_selector("body[data-ready='1']")
        page.click("#tab-settings")
        expect(page.locator("#rr-kind")).to_have_value("remote")
        expect(page.locator("#rr-base-url")).to_have_value(rr.url)
        expect(page.locator("#rr-api")).to_have_value("tei")
        expect(page.locator("#rr-top-n")).to_have_value("3")
        page.locator("#rerank-form").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "settings-rerank.png"), full_page=True)

        # The lab: bm25's hits, reranked by the server; its second hit (the answer) is now first.
        page.click("#tab-lab")
        for box in page.locator("#lab-methods input").all():
            if box.get_attribute("value") != "bm25":
                box.uncheck()
        page.fill("#lab-query", Q)
        page.click("#lab-run")
        column = page.locator(".lab-column[data-method='bm25']")
        expect(column.locator(".reranked-note")).to_have_text(f"reranked by remote:tei:{rr.url}")
        first = column.locator(".hit").first
        expect(first).to_have_attribute("data-first-rank", "2")
        expect(first.locator(".score")).to_have_text("was #2 · 0.8571")
        expect(column.locator(".hit .score").last).to_contain_text("not reranked · ")
        expect(first.locator(".snippet")).to_contain_text("十日内")
        assert len(rr.requests) == 1 and len(rr.requests[0].body["texts"]) == 3
        page.screenshot(path=str(shots / "lab-reranked.png"))

        # The chat's answer was retrieved through the reranker too, and says so.
        page.click("#tab-chat")
        page.select_option("#chat-method", "bm25")
        page.fill("#chat-input", Q)
        page.press("#chat-input", "Enter")
        answer = page.locator(".msg.bot").last
        expect(answer.locator(".sources-title")).to_contain_text(f"reranked by remote:tei:{rr.url}")
        assert len(rr.requests) == 2

        # Off again: the lab's hits are the method's own.
        page.click("#tab-settings")
        page.select_option("#rr-kind", "none")
        page.click("#rerank-save")
        expect(page.locator("#notice")).to_have_text("Settings saved.")
        page.click("#tab-lab")
        page.click("#lab-run")
        expect(column.locator(".hit").first).to_contain_text("赔偿协议范本")
        expect(column.locator(".reranked-note")).to_have_count(0)
        assert len(rr.requests) == 2 and KBConfig.load(toml).rerank.kind is None
        assert page.errors == []
