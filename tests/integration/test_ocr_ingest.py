"""Scanned documents: a two-page image-only PDF made here is read by OCR, offline, page by page.

The PDF has no text layer at all (each page is a rendered picture of Chinese text), so everything
found comes from OCR; a phrase from page 2 must be searchable and its citation must say page 2.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from tests.helpers.documents import cjk_font, scanned_pdf, text_image

from zhiku.config import IngestConfig, KBConfig, MethodConfig
from zhiku.errors import EmptyFileError, IngestError
from zhiku.ingest.loaders import LoadOptions, load_bytes
from zhiku.service import KnowledgeBase
from zhiku.types import page_label

pytestmark = pytest.mark.skipif(cjk_font() is None, reason="no CJK font (apt-get install fonts-wqy-zenhei)")

PAGE_1 = ["第一章 总则", "本办法适用于全体职工。"]
PAGE_2 = ["第二章 休假", "职工工作满一年的，享受带薪年休假五天。"]


def bm25_config(**ingest: object) -> KBConfig:
    return KBConfig(
        methods={"bm25": MethodConfig(kind="bm25")},
        default_method="bm25",
        ingest=IngestConfig(**ingest),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def scan() -> bytes:
    return scanned_pdf([PAGE_1, PAGE_2])


def test_scanned_pdf_has_no_text_layer(scan: bytes) -> None:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(scan))
    assert len(reader.pages) == 2
    assert all(not (page.extract_text() or "").strip() for page in reader.pages)


def test_ocr_reads_both_pages_with_their_numbers(tmp_path: Path, scan: bytes) -> None:
    seen: list[tuple[int, int]] = []
    loaded = load_bytes(tmp_path / "scan.pdf", scan, LoadOptions(on_page=lambda d, n: seen.append((d, n))))
    assert seen == [(1, 2), (2, 2)]  # progress, page by page
    assert [number for _, number in loaded.pages] == [1, 2]
    page_2 = loaded.text[loaded.pages[1][0] :]
    assert "本办法适用于全体职工" in loaded.text[: loaded.pages[1][0]]
    assert "享受带薪年休假五天" in page_2
    assert not loaded.warnings


def test_phrase_from_page_2_is_found_and_cited_as_page_2(tmp_path: Path, scan: bytes) -> None:
    path = tmp_path / "docs" / "休假办法.pdf"
    path.parent.mkdir()
    path.write_bytes(scan)
    with KnowledgeBase.open(str(tmp_path / "kb"), config=bm25_config()) as kb:
        report, _ = kb.ingest([path])
        assert report.added and not report.failed
        hits = kb.search("带薪年休假五天", k=3)
        assert hits and hits[0].chunk is not None and hits[0].doc is not None
        assert "年休假五天" in hits[0].chunk.text
        assert hits[0].chunk.page == 2
        assert page_label(hits[0].doc.format, hits[0].chunk.page) == "p. 2"
        answer = kb.ask("带薪年休假有几天？", k=3)
        assert answer.citations and answer.citations[0].location == "p. 2"


def test_ocr_off_leaves_a_scan_empty_with_a_hint(tmp_path: Path, scan: bytes) -> None:
    with pytest.raises(EmptyFileError, match="no text layer") as info:
        load_bytes(tmp_path / "scan.pdf", scan, LoadOptions(ocr=False))
    assert "ingest.ocr = true" in (info.value.hint or "")
    with pytest.raises(IngestError, match="OCR is off"):
        load_bytes(tmp_path / "photo.png", text_image(["你好"]), LoadOptions(ocr=False))


def test_a_page_that_fails_is_reported_and_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zhiku.ingest import ocr

    real = ocr.ocr_image
    calls = {"n": 0}

    def flaky(image: object) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated ONNX failure")
        return real(image)  # type: ignore[arg-type]

    monkeypatch.setattr(ocr, "ocr_image", flaky)
    loaded = load_bytes(tmp_path / "scan.pdf", scanned_pdf([PAGE_1, PAGE_2]), LoadOptions())
    assert [number for _, number in loaded.pages] == [2]
    assert len(loaded.warnings) == 1 and "page 1" in loaded.warnings[0] and "skipped" in loaded.warnings[0]
