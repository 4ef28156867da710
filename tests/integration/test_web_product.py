"""The page as a product (issue 15), in a real browser: uploads that never half-fail with progress
that only moves forward, picking an LLM and building a method under Settings, and conversations
that keep their history across a server restart. Screenshots go to $ZHIKU_SCREENSHOTS.

Same setup as test_web_page.py (Debian's Chromium driven by Playwright; skipped without them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web page is served by the API, which needs fastapi and uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION, fast_config, make_docx  # noqa: E402
from tests.helpers.live_server import live_server  # noqa: E402
from tests.integration.fake_llm_server import FakeLLMServer  # noqa: E402
from tests.integration.test_web_page import (  # noqa: E402, F401  (pytestmark: the same skip)
    CHROMIUM,
    CHROMIUM_ARGS,
    open_page,
    pytestmark,
)

from zhiku.retrieve.methods.hybrid import HybridOptions  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402

expect = sync_api.expect


def _home(tmp_path: Path, dense: bool = True, generator: dict[str, Any] | None = None) -> Path:
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    (docs / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    config = fast_config()
    methods = dict(config.methods)
    if not dense:  # no embedding at all: dense disabled, and no MiniLM in the fusion
        methods["dense"] = methods["dense"].model_copy(update={"enabled": False})
        del methods["minilm"]
        options = HybridOptions(**methods["hybrid"].options).only(["bm25", "dense"])
        methods["hybrid"] = methods["hybrid"].model_copy(update={"options": options})
    config = config.updated(methods=methods, **({"generator": generator} if generator else {}))
    with KnowledgeBase.open("docs", home=home, config=config) as kb:
        kb.ingest([docs])
    return home


def _rewriting_reply(messages: list[dict[str, str]]) -> str:
    from zhiku.generate.prompts import DEFAULTS

    if messages[0]["content"] in (DEFAULTS["zh"].rewrite_system, DEFAULTS["en"].rewrite_system):
        return "When should roses be pruned?"
    if "roses be pruned" in messages[-1]["content"]:  # the rewritten follow-up is what is asked
        return "Prune roses in late winter [1]."
    return "Tomatoes need six hours of sun [1]."


def test_upload_refuses_bad_files_and_progress_only_moves_forward(
    browser: Any, tmp_path: Path, shots: Path
) -> None:
    home = _home(tmp_path)
    with live_server(home) as server:
        page = open_page(browser, server)
        page.click("#tab-manage")
        # Every value the bar takes, as the page sets it.
        page.evaluate("""() => {
            window.barValues = [];
            new MutationObserver((records) => {
                for (const r of records) for (const n of r.addedNodes) {
                    if (n.classList && n.classList.contains("upload")) {
                        const bar = n.querySelector("progress");
                        const desc = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, "value");
                        Object.defineProperty(bar, "value", { get() { return desc.get.call(this); },
                            set(v) {
                                // Only the ingest job's values: not the transfer's ("Uploading 40%").
                                const label = n.querySelector(".upload-label").textContent;
                                if (!label.startsWith("Uploading")) window.barValues.push(Number(v));
                                desc.set.call(this, v);
                            } });
                    }
                }
            }).observe(document.querySelector("#uploads"), { childList: true });
        }""")
        notes = "".join(f"## Note {i}\n\n{EN_GUIDE}\n\nLine {i}.\n\n" for i in range(30))
        page.set_input_files(
            "#file-input",
            files=[
                {
                    "name": "coffee.docx",
                    "mimeType": "application/octet-stream",
                    "buffer": make_docx(tmp_path / "coffee.docx").read_bytes(),
                },
                {"name": "笔记.md", "mimeType": "text/markdown", "buffer": notes.encode()},
                {"name": "t.numbers", "mimeType": "application/octet-stream", "buffer": b"PK\x03\x04"},
            ],
        )
        # refused by name before it was sent (issue 29): the page knows the loaders' formats
        expect(page.locator("#notice")).to_contain_text("t.numbers")
        row = page.locator("#uploads .upload").first
        expect(row.locator(".upload-files")).not_to_contain_text("t.numbers")
        expect(row).to_have_class("upload done")
        expect(row.locator(".upload-label")).to_contain_text("Done: 2 added")
        assert row.locator("progress").get_attribute("value") is not None
        assert page.evaluate("document.querySelector('#uploads progress').value") == 100
        values = page.evaluate("window.barValues")
        assert values and values == sorted(values) and values[-1] == 100, values
        expect(page.locator("#doc-table tbody tr")).to_have_count(4)
        page.screenshot(path=str(shots / "upload-refused.png"), full_page=True)
        assert page.errors == []


def test_settings_pick_an_llm_and_build_a_method(browser: Any, tmp_path: Path, shots: Path) -> None:
    home = _home(tmp_path, dense=False)
    with FakeLLMServer() as llm, live_server(home) as server:
        llm.reply = _rewriting_reply
        page = open_page(browser, server)

        # The lab offers what can run and says what cannot, with a button.
        page.click("#tab-lab")
        expect(page.locator("#lab-methods input")).to_have_count(1)
        expect(page.locator("#lab-methods input[value='bm25']")).to_be_checked()
        unbuilt = page.locator("#lab-unbuilt .unbuilt[data-method='dense']")
        expect(unbuilt).to_contain_text("dense — not built")
        page.screenshot(path=str(shots / "lab-unbuilt.png"))
        unbuilt.locator("button").click()  # Build: a job, followed under Settings
        build = page.locator("#builds .build[data-method='dense']")
        expect(build).to_have_class("build done")
        expect(build.locator(".build-label")).to_contain_text("Done")
        expect(page.locator("#method-table tr[data-method='dense'] td").nth(2)).to_have_text("built")
        expect(page.locator("#method-table tr[data-method='hybrid'] td").nth(2)).to_have_text("built")
        page.screenshot(path=str(shots / "settings-built.png"), full_page=True)
        page.click("#tab-lab")
        expect(page.locator("#lab-methods input")).to_have_count(3)
        expect(page.locator("#lab-unbuilt .unbuilt")).to_have_count(0)

        # An LLM that is down: the passages, with the reason for the operator.
        page.click("#tab-settings")
        page.select_option("#gen-kind", "ollama")
        expect(page.locator("#gen-model")).to_be_visible()
        page.fill("#gen-model", "qwen2.5:7b")
        page.fill("#gen-base-url", "http://127.0.0.1:9")
        page.click("#settings-save")
        expect(page.locator("#notice")).to_have_text("Settings saved.")
        page.click("#tab-chat")
        page.select_option("#chat-method", "bm25")
        page.fill("#chat-input", "How much sunlight do tomatoes need?")
        page.press("#chat-input", "Enter")
        answer = page.locator(".msg.bot").last
        expect(answer.locator(".llm-error")).to_contain_text("LLM ollama:qwen2.5:7b failed")
        expect(answer.locator(".sources-title")).to_have_text("Retrieved passages")
        expect(answer.locator(".sources li").first).to_contain_text("six hours of direct sunlight")
        page.screenshot(path=str(shots / "llm-down.png"))

        # The working one: picked, saved, and answering.
        page.click("#tab-settings")
        page.fill("#gen-base-url", llm.url)
        page.click("#settings-save")
        expect(page.locator("#notice")).to_have_text("Settings saved.")
        page.screenshot(path=str(shots / "settings-llm.png"), full_page=True)
        toml = (home / "docs" / "zhiku.toml").read_text(encoding="utf-8")
        assert 'kind = "ollama"' in toml and llm.url in toml
        page.click("#tab-chat")
        page.click("#conv-new")
        page.fill("#chat-input", "How much sunlight do tomatoes need?")
        page.press("#chat-input", "Enter")
        answer = page.locator(".msg.bot").last
        expect(answer.locator(".text")).to_have_text("Tomatoes need six hours of sun [1].")
        expect(answer.locator(".llm-error")).to_have_count(0)
        assert llm.chat_requests()

        # Smaller chunks: the page says the stored chunks are stale and re-chunks them.
        page.click("#tab-settings")
        page.fill("#chunk-size", "80")
        page.click("#settings-save")
        expect(page.locator("#rechunk-note")).to_be_visible()
        expect(page.locator("#rechunk-reason")).to_contain_text("chunking.size 400 → 80")
        page.screenshot(path=str(shots / "settings-rechunk.png"), full_page=True)
        page.click("#rechunk")
        expect(page.locator("#builds .build[data-method='rechunk']")).to_have_class("build done")
        expect(page.locator("#rechunk-note")).to_be_hidden()
        expect(page.locator("#builds .build[data-method='rechunk'] .build-label")).to_contain_text(
            "2 documents re-chunked"
        )
        assert page.errors == []


def test_chat_history_survives_a_server_restart(browser: Any, tmp_path: Path, shots: Path) -> None:
    with FakeLLMServer() as llm:
        llm.reply = _rewriting_reply
        home = _home(
            tmp_path, generator={"kind": "ollama", "options": {"model": "qwen2.5:7b", "base_url": llm.url}}
        )
        with live_server(home) as server:
            port = int(server.url.rsplit(":", 1)[1])
            page = open_page(browser, server)
            page.select_option("#chat-method", "bm25")
            page.fill("#chat-input", "How much sunlight do tomatoes need?")
            page.press("#chat-input", "Enter")
            expect(page.locator(".msg.bot").last.locator(".text")).to_contain_text("six hours")
            page.fill("#chat-input", "And when do I prune the roses?")
            page.press("#chat-input", "Enter")
            expect(page.locator(".query-note")).to_have_text("searched for: When should roses be pruned?")
            expect(page.locator(".msg.bot").last.locator(".text")).to_have_text(
                "Prune roses in late winter [1]."
            )
            expect(page.locator("#conv-list li")).to_have_count(1)
            expect(page.locator("#conv-title")).to_have_text("How much sunlight do tomatoes need?")
            # The follow-up went to the LLM with the first turn as its history.
            rewrite = [r.body["messages"] for r in llm.chat_requests()][1]
            assert "How much sunlight do tomatoes need?" in rewrite[1]["content"]

        with live_server(home, port=port):  # a new server over the same home, at the same address
            page.reload()  # the same browser (its localStorage remembers the open conversation)
            page.wait_for_selector("body[data-ready='1']")
            expect(page.locator("#conv-list li")).to_have_count(1)
            expect(page.locator(".msg.user")).to_have_count(2)
            expect(page.locator(".msg.user").nth(1)).to_have_text("And when do I prune the roses?")
            expect(page.locator(".msg.bot").first.locator(".text a.cite")).to_have_text("[1]")
            expect(page.locator(".query-note")).to_have_text("searched for: When should roses be pruned?")
            page.once("dialog", lambda d: d.accept("玫瑰 roses"))
            page.click("#conv-rename")
            expect(page.locator("#conv-title")).to_have_text("玫瑰 roses")
            href = page.locator("#conv-export").get_attribute("href")
            md = page.evaluate("async (u) => (await fetch(u)).text()", href)
            assert md.startswith("# 玫瑰 roses") and "## And when do I prune the roses?" in md
            assert "- [1] **Gardening guide" in md
            page.screenshot(path=str(shots / "chat-restored.png"))
            # A third question in the restored conversation carries the stored history.
            n = len(llm.chat_requests())
            page.fill("#chat-input", "How much sunlight then?")
            page.press("#chat-input", "Enter")
            expect(page.locator(".msg.bot")).to_have_count(3)
            expect(page.locator(".msg.bot").last).not_to_have_class("msg bot streaming")
            rewrite = [r.body["messages"] for r in llm.chat_requests()][n]
            assert (
                "And when do I prune the roses?" in rewrite[1]["content"]
                or "When should roses be pruned?" in rewrite[1]["content"]
            )
            assert json.loads(json.dumps(page.errors)) == []


def test_documents_page_search_delete_by_title_and_chunks(browser: Any, tmp_path: Path, shots: Path) -> None:
    from zhiku.config import KBConfig, MethodConfig

    folder = tmp_path / "laws"
    (folder / "zh").mkdir(parents=True)
    for i in range(55):
        (folder / "zh" / f"条例{i:02d}.md").write_text(
            f"# 条例第{i}号\n\n{ZH_REGULATION}\n\n附则{i}。", encoding="utf-8"
        )
    (folder / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    home = tmp_path / "home"
    with KnowledgeBase.open(
        "laws", home=home, config=KBConfig(methods={"bm25": MethodConfig(kind="bm25")})
    ) as kb:
        kb.ingest([folder])
    with live_server(home) as server:
        page = open_page(browser, server, kb="laws")
        page.click("#tab-manage")
        rows = page.locator("#doc-table tbody tr")
        expect(rows).to_have_count(50)
        expect(page.locator("#doc-range")).to_have_text("1–50 of 56")
        expect(rows.first.locator("td").first).to_have_text("garden.md")  # not /tmp/…/laws/garden.md
        page.click("#doc-next")
        expect(rows).to_have_count(6)
        expect(page.locator("#doc-range")).to_have_text("51–56 of 56")

        page.fill("#doc-search", "条例第5")  # a title: 第5号 and 第50…54号
        expect(rows).to_have_count(6)
        expect(rows.first.locator("td").nth(1)).to_have_text("条例第5号")
        messages: list[str] = []

        def accept(dialog: Any) -> None:
            messages.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        page.click("#doc-delete-matching")
        expect(page.locator("#notice")).to_have_text("Deleted 6 documents.")
        assert "Delete these 6 documents matching “条例第5”?" in messages[0]
        assert "• zh/条例05.md — 条例第5号" in messages[0] and "• zh/条例54.md — 条例第54号" in messages[0]
        expect(page.locator("#docs-empty")).to_be_visible()
        page.fill("#doc-search", "")
        expect(page.locator("#doc-range")).to_have_text("1–50 of 50")

        page.click("#doc-table a:text('garden.md')")
        expect(page.locator("#viewer-path")).to_have_text("garden.md")
        page.click("#viewer-chunks")
        chunks = page.locator("#viewer-chunk-list li")
        expect(chunks.first).to_contain_text("Tomatoes need at least six hours")
        expect(chunks.first.locator(".chunk-head")).to_contain_text("Gardening guide")
        page.screenshot(path=str(shots / "documents-chunks.png"))
        assert page.errors == []


def test_swagger_ui_works_offline(browser: Any, tmp_path: Path, shots: Path) -> None:
    pytest.importorskip("swagger_ui_bundle", reason="offline /docs needs the swagger-ui-bundle-v2 package")
    with live_server(tmp_path / "home") as server:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        context.set_default_timeout(30_000)
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
        page.goto(server.url + "/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("zhiku", timeout=30_000)
        expect(page.locator(".opblock-tag-section").first).to_be_visible()
        page.screenshot(path=str(shots / "docs.png"))
        assert outside == []  # nothing from a CDN
        context.close()
