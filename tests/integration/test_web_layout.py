"""Issue 29: the page at a phone's width (375 px) and a desktop's (1440 px) in a real Chromium.

Every tab is shown at both widths with a screenshot, and nothing may be wider than the screen
(horizontal overflow); no request fails (the favicon included) and no script error happens. The
page speaks one language per screen, the browser's, and switches on request. A fusion whose part
is not ready answers with a badge naming the parts that did.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web page is served by the API, which needs fastapi and uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from tests.helpers.live_server import LiveServer, home_with_docs_kb, live_server  # noqa: E402
from tests.integration.test_web_page import TIMEOUT_MS, pytestmark  # noqa: E402,F401

expect = sync_api.expect
WIDTHS = {"phone": {"width": 375, "height": 740}, "desktop": {"width": 1440, "height": 900}}
TABS = ["chat", "manage", "lab", "settings", "tune", "eval"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = home_with_docs_kb(tmp_path_factory.mktemp("layout") / "home")
    with live_server(home) as s:
        s.home = home  # type: ignore[attr-defined]
        yield s


def open_page(browser: Any, server: LiveServer, viewport: dict[str, int], locale: str) -> Any:
    context = browser.new_context(viewport=viewport, locale=locale)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"script error: {e}"))
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and page.problems.append(f"{r.status} {r.url}"))
    page.add_init_script(f"localStorage.setItem('zhiku.kb', {json.dumps('docs')})")
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    return page


def overflow(page: Any) -> list[str]:
    """The visible elements that reach beyond the right edge of the screen, and the page's own width."""
    return page.evaluate(
        """() => {
        const width = document.documentElement.clientWidth;
        const out = [];
        const page = document.documentElement.scrollWidth;
        if (page > width + 1) out.push(`page ${page} > ${width}`);
        for (const el of document.querySelectorAll("body *")) {
            const r = el.getBoundingClientRect();
            if (!r.width || getComputedStyle(el).visibility === "hidden") continue;
            // inside a container that scrolls sideways on purpose (the tabs, a wide table's card)
            let p = el.parentElement, scrolls = false;
            while (p && !scrolls) {
                scrolls = ["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX);
                p = p.parentElement;
            }
            const name = `${el.tagName.toLowerCase()}#${el.id}.${el.className}`;
            if (!scrolls && r.right > width + 1) out.push(`${name} right=${Math.round(r.right)}`);
        }
        return out.slice(0, 10);
    }"""
    )


@pytest.mark.parametrize("size", list(WIDTHS))
def test_every_tab_fits_the_screen_with_no_failed_request(
    browser: Any, server: LiveServer, shots: Path, size: str
) -> None:
    page = open_page(browser, server, WIDTHS[size], "en-US")
    for tab in TABS:
        page.click(f"#tab-{tab}")
        expect(page.locator(f"#panel-{tab}")).to_be_visible()
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / f"layout-{size}-{tab}.png"), full_page=True)
        assert overflow(page) == [], f"{tab} at {size} width"
    # an answer with its sources, and a passage opened from its citation
    page.click("#tab-chat")
    page.fill("#chat-input", "How much sunlight do tomatoes need?")
    page.press("#chat-input", "Enter")
    answer = page.locator(".msg.bot").last
    expect(answer.locator(".text")).to_contain_text("six hours")
    answer.locator(".text a.cite").first.click()
    expect(page.locator("#viewer")).to_be_visible()
    page.screenshot(path=str(shots / f"layout-{size}-citation.png"), full_page=True)
    assert overflow(page) == []
    assert page.problems == []
    icon = page.request.get(server.url + "/favicon.ico")
    assert icon.status == 200 and b"<svg" in icon.body()


def test_one_language_per_screen_chosen_by_the_browser_and_switchable(
    browser: Any, server: LiveServer
) -> None:
    page = open_page(browser, server, WIDTHS["phone"], "zh-CN")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    expect(page.locator("#tab-manage")).to_have_text("管理")
    page.click("#tab-manage")
    formats = page.locator("#upload-types").inner_text()
    assert "pptx" in formats and "epub" in formats
    page.click("#lang-button")
    expect(page.locator("#tab-manage")).to_have_text("Manage")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.problems == []


def test_a_fusion_with_a_part_not_ready_shows_a_badge(
    browser: Any, server: LiveServer, shots: Path, tmp_path: Path
) -> None:
    kb_root = server.home / "docs"  # type: ignore[attr-defined]
    moved = tmp_path / "dense-index"
    index = kb_root / "indexes" / "dense"
    target = index.resolve()
    shutil.move(str(target), moved)  # the dense index is gone (as before its first build ends)
    index.unlink(missing_ok=True)
    try:
        page = open_page(browser, server, WIDTHS["phone"], "en-US")
        page.fill("#chat-input", "How much sunlight do tomatoes need?")
        page.press("#chat-input", "Enter")
        badge = page.locator(".msg.bot").last.locator(".parts-badge")
        expect(badge).to_contain_text("answered by bm25")
        page.screenshot(path=str(shots / "layout-phone-badge.png"), full_page=True)
    finally:
        shutil.move(str(moved), target)
        if not index.exists():
            index.symlink_to(target.name)


def test_an_evaluation_runs_from_the_page_and_runs_compare(
    browser: Any, server: LiveServer, shots: Path, tmp_path: Path
) -> None:
    qa = "\n".join(
        json.dumps(q, ensure_ascii=False)
        for q in [
            {"question": "How much sunlight do tomatoes need?", "evidence": "six hours"},
            {"question": "农业保险合同", "evidence": "农业保险"},
        ]
    )
    page = open_page(browser, server, WIDTHS["phone"], "en-US")
    page.click("#tab-eval")
    for _ in range(2):
        page.set_input_files(
            "#eval-file", files=[{"name": "qa.jsonl", "mimeType": "application/json", "buffer": qa.encode()}]
        )
        page.fill("#eval-methods", "bm25,hybrid")
        page.click("#eval-start")
        expect(page.locator("#eval-jobs .build").first).to_have_class("build done", timeout=120_000)
    expect(page.locator("#eval-table tbody tr")).to_have_count(2)
    expect(page.locator("#eval-table tbody tr[data-method='bm25']")).to_be_visible()
    expect(page.locator("#eval-runs input")).to_have_count(2)
    page.locator("#eval-runs input").nth(0).check()
    page.locator("#eval-runs input").nth(1).check()
    page.click("#eval-compare")
    expect(page.locator("#eval-table tbody tr")).to_have_count(4)
    page.screenshot(path=str(shots / "layout-phone-eval.png"), full_page=True)
    assert overflow(page) == []
    assert page.problems == []
