"""The web page in a real browser: Playwright driving Debian's Chromium, headless, against the app
under Uvicorn. One screenshot per page goes to $ZHIKU_SCREENSHOTS (default: the pytest tmp dir).

Skipped, with the reason, when Playwright or Chromium is missing (CI installs both:
``apt-get install chromium fonts-wqy-zenhei``; never ``playwright install``, which downloads).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web page is served by the API, which needs fastapi and uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION, fast_config  # noqa: E402
from tests.helpers.live_server import LiveServer, home_with_docs_kb, live_server  # noqa: E402

CHROMIUM = os.environ.get("ZHIKU_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
if os.environ.get("ZHIKU_REQUIRE_BROWSER") and not Path(CHROMIUM).exists():
    # .ci/run installs Chromium and sets this: in CI a missing browser is a failure, not a skip.
    raise RuntimeError(f"ZHIKU_REQUIRE_BROWSER is set but there is no Chromium at {CHROMIUM}")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
    "(or set ZHIKU_CHROMIUM)",
)
LAPTOP = {"width": 1366, "height": 768}
TIMEOUT_MS = 30_000
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = home_with_docs_kb(tmp_path_factory.mktemp("web") / "home")
    with live_server(home) as s:
        yield s


def open_page(browser: Any, server: LiveServer, locale: str = "en-US", kb: str = "docs") -> Any:
    context = browser.new_context(viewport=LAPTOP, locale=locale)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.add_init_script(f"localStorage.setItem('zhiku.kb', {json.dumps(kb)})")
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    return page


def test_manage_create_kb_drop_and_upload_files(browser: Any, server: LiveServer, shots: Path) -> None:
    page = open_page(browser, server)
    page.click("#tab-manage")
    page.fill("#create-name", "garden")
    page.click("#create-form summary")
    page.fill("#create-settings", json.dumps({"methods": fast_config().model_dump(mode="json")["methods"]}))
    page.click("#create-submit")
    expect(page.locator("#kb-select")).to_have_value("garden")
    expect(page.locator("#upload-kb")).to_have_text("→ garden")

    # The file chooser...
    page.set_input_files(
        "#file-input",
        files=[
            {"name": "garden.md", "mimeType": "text/markdown", "buffer": EN_GUIDE.encode()},
        ],
    )
    # ...and drag and drop, with a DataTransfer as a real drop carries it.
    page.evaluate(
        """([name, text]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], name, { type: "text/markdown" }));
        const zone = document.querySelector("#dropzone");
        for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
        }
    }""",
        ["农业保险办法.md", ZH_REGULATION],
    )
    expect(page.locator("#uploads .upload.done")).to_have_count(2)
    expect(page.locator("#uploads .upload.done").first).to_contain_text("Done: 1 added")
    rows = page.locator("#doc-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#kb-summary")).to_contain_text("2 documents")
    expect(page.locator("#methods .method.fresh")).to_have_count(4)  # bm25, dense, minilm, hybrid

    # A wrong type is refused by name before it is sent (issue 29): the filter is the loaders' list.
    uploads = page.locator("#uploads .upload").count()
    page.set_input_files(
        "#file-input", files=[{"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": b"MZ"}]
    )
    expect(page.locator("#notice")).to_contain_text("tool.exe")
    assert page.locator("#uploads .upload").count() == uploads
    accept = page.locator("#file-input").get_attribute("accept") or ""
    assert ".pptx" in accept.split(",") and ".epub" in accept.split(",") and ".exe" not in accept
    page.screenshot(path=str(shots / "manage.png"), full_page=True)

    # Clicking a document opens it; deleting one asks first.
    page.click("#doc-table a:text('garden.md')")
    expect(page.locator("#viewer")).to_be_visible()
    expect(page.locator("#viewer-text")).to_contain_text("Tomatoes need at least six hours")
    page.click("#viewer-close")
    page.once("dialog", lambda d: d.accept())
    page.locator("#doc-table tbody tr", has_text="garden.md").locator("button").click()
    expect(rows).to_have_count(1)
    assert page.errors == []


def test_chat_streams_an_answer_and_a_citation_opens_the_passage(
    browser: Any, server: LiveServer, shots: Path
) -> None:
    page = open_page(browser, server)
    expect(page.locator("#kb-select")).to_have_value("docs")
    page.fill("#chat-input", "How much sunlight do tomatoes need?")
    page.press("#chat-input", "Enter")
    answer = page.locator(".msg.bot").last
    expect(answer).not_to_have_class("msg bot streaming")
    expect(answer.locator(".text")).to_contain_text("six hours of direct sunlight")
    cite = answer.locator(".text a.cite").first
    expect(cite).to_have_text("[1]")
    expect(answer.locator(".sources li")).to_contain_text("Gardening guide")

    cite.click()
    mark = page.locator("#viewer-mark")
    expect(page.locator("#viewer")).to_be_visible()
    expect(mark).to_contain_text("Tomatoes need at least six hours of direct sunlight every day.")
    expect(page.locator("#viewer-title")).to_have_text("Gardening guide")
    assert "#doc/docs/" in page.url  # the passage has an address: it can be shared or reopened
    page.screenshot(path=str(shots / "chat.png"))

    # The address opens the same highlighted passage in a fresh page.
    fresh = page.context.new_page()
    fresh.goto(page.url)
    expect(fresh.locator("#viewer-mark")).to_contain_text("six hours of direct sunlight")
    assert page.errors == []


def test_a_citation_opens_its_passage_with_the_quoted_sentence_marked(
    browser: Any, server: LiveServer, shots: Path
) -> None:
    page = open_page(browser, server)
    page.fill("#chat-input", "How often should I water tomatoes?")
    page.press("#chat-input", "Enter")
    answer = page.locator(".msg.bot").last
    expect(answer).not_to_have_class("msg bot streaming")
    expect(answer.locator(".text")).to_contain_text("Water them deeply twice a week.")
    answer.locator(".text a.cite").first.click()
    # The passage is highlighted, and inside it the sentence the answer quotes, not its neighbour.
    passage, quoted = page.locator("#viewer-mark"), page.locator("#viewer-mark mark.quoted")
    expect(passage).to_contain_text("Tomatoes need at least six hours of direct sunlight every day.")
    expect(quoted).to_have_count(1)
    expect(quoted).to_have_text("Water them deeply twice a week.")
    page.screenshot(path=str(shots / "quoted.png"))
    assert page.errors == []


def test_retrieval_lab_compares_methods_side_by_side(browser: Any, server: LiveServer, shots: Path) -> None:
    page = open_page(browser, server)
    page.click("#tab-lab")
    for name in ("bm25", "dense", "minilm", "hybrid"):
        expect(page.locator(f"#lab-methods input[value='{name}']")).to_be_checked()
    page.fill("#lab-query", "tomatoes sunlight water")
    page.click("#lab-run")
    columns = page.locator(".lab-column")
    expect(columns).to_have_count(4)
    for name in ("bm25", "dense", "minilm", "hybrid"):
        column = page.locator(f".lab-column[data-method='{name}']")
        expect(column.locator("h3")).to_have_text(name)
        expect(column.locator(".hit").first).to_contain_text("Tomatoes")
        expect(column.locator(".score").first).to_have_text(re.compile(r"^\d+\.\d{4}$"))
    page.screenshot(path=str(shots / "lab.png"))
    page.locator(".lab-column[data-method='bm25'] .hit a").first.click()
    expect(page.locator("#viewer-mark")).to_contain_text("Tomatoes")
    assert page.errors == []


def test_chinese_interface(browser: Any, server: LiveServer, shots: Path) -> None:
    page = open_page(browser, server, locale="zh-CN")
    expect(page.locator("#tab-chat")).to_have_text("问答")
    expect(page.locator("#tab-lab")).to_have_text("检索实验室")
    page.fill("#chat-input", "保险机构应当在多少日内支付保险金？")
    page.click("#chat-send")
    answer = page.locator(".msg.bot").last
    expect(answer.locator(".text")).to_contain_text("十日内")
    expect(answer.locator(".sources-title")).to_have_text("来源")
    answer.locator(".text a.cite").first.click()
    expect(page.locator("#viewer-mark")).to_contain_text("十日内")
    page.screenshot(path=str(shots / "chat-zh.png"))
    page.click("#lang-button")
    expect(page.locator("#tab-chat")).to_have_text("Chat")
    assert page.errors == []
