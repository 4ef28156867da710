"""Tables kept as tables: DOCX, HTML and text-layer PDF tables become Markdown tables, chunked by
whole rows with the header repeated, and a question about a cell finds its row (BM25, end to end)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers.documents import cjk_font, revenue_rows, table_docx, table_html, table_pdf

from zhiku.config import ChunkingConfig, KBConfig, MethodConfig
from zhiku.ingest.loaders import load_bytes
from zhiku.service import KnowledgeBase

ROWS = revenue_rows()  # 2020–2023, 16 quarters: several chunks at size 160
HEADER_LINE = "| " + " | ".join(ROWS[0]) + " |"
TARGET = "| 2023年 | 第二季度 | 2237 | 223 |"

MAKERS: dict[str, Callable[[], bytes]] = {
    ".docx": lambda: table_docx(ROWS),
    ".html": lambda: table_html(ROWS),
    ".pdf": lambda: table_pdf(ROWS, "grid"),
}


def needs_font(suffix: str) -> None:
    if suffix == ".pdf" and cjk_font() is None:
        pytest.skip("no CJK font to draw the PDF table (apt-get install fonts-wqy-zenhei)")


@pytest.mark.parametrize("suffix", sorted(MAKERS))
def test_table_becomes_a_markdown_table(tmp_path: Path, suffix: str) -> None:
    needs_font(suffix)
    text = load_bytes(tmp_path / f"report{suffix}", MAKERS[suffix]()).text
    assert HEADER_LINE + "\n| --- | --- | --- | --- |\n| 2020年 | 第一季度 | 1000 | 100 |" in text
    assert TARGET in text
    assert "下表列出各季度的营业收入与净利润。" in text and "数据未经审计。" in text


@pytest.mark.parametrize("suffix", sorted(MAKERS))
def test_a_question_about_a_cell_finds_its_row(tmp_path: Path, suffix: str) -> None:
    needs_font(suffix)
    path = tmp_path / "docs" / f"财务报告{suffix}"
    path.parent.mkdir()
    path.write_bytes(MAKERS[suffix]())
    config = KBConfig(
        methods={"bm25": MethodConfig(kind="bm25")},
        default_method="bm25",
        chunking=ChunkingConfig(size=160, min_size=0),
    )
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config) as kb:
        kb.ingest([path])
        doc = kb.catalog.documents()[0]
        chunks = kb.catalog.chunks_of(doc.id)
        text = kb.catalog.document_text(doc.id) or ""
        table_chunks = [c for c in chunks if "| 第" in c.text]
        assert len(table_chunks) >= 3  # the table really was split
        for c in table_chunks:
            assert HEADER_LINE in c.text.split("\n")  # every table chunk reads under its header
            span = text[c.start : c.end]
            # Whole rows only: the span starts and ends at line boundaries of the table.
            rows = [line for line in span.split("\n") if line.startswith("|")]
            assert all(line.endswith("|") for line in rows)
            assert c.start == 0 or text[c.start - 1] == "\n"
        hits = kb.search("2023年 第二季度 营业收入", k=3)
        assert hits and hits[0].chunk is not None
        assert TARGET in hits[0].chunk.text
        assert HEADER_LINE in hits[0].chunk.text


@pytest.mark.skipif(cjk_font() is None, reason="no CJK font")
def test_pdf_table_continued_on_the_next_page_gets_the_header(tmp_path: Path) -> None:
    loaded = load_bytes(tmp_path / "long.pdf", table_pdf(ROWS, "grid", rows_per_page=10))
    page_2 = loaded.text[loaded.pages[1][0] :]
    assert page_2.startswith(HEADER_LINE)
    assert TARGET in page_2


@pytest.mark.skipif(cjk_font() is None, reason="no CJK font")
def test_pdf_merged_cells_repeat_in_every_row(tmp_path: Path) -> None:
    text = load_bytes(tmp_path / "merged.pdf", table_pdf(ROWS, "merged")).text
    assert TARGET in text


@pytest.mark.skipif(cjk_font() is None, reason="no CJK font")
@pytest.mark.parametrize("style", ["rules", "none"])
def test_pdf_tables_without_ruled_cells_stay_lines_of_text(tmp_path: Path, style: str) -> None:
    # Documented limit (README): pdfplumber finds tables by their ruling lines.
    text = load_bytes(tmp_path / f"{style}.pdf", table_pdf(ROWS, style)).text
    assert "| --- |" not in text
    assert "2023年 第二季度 2237 223" in text  # each row still reads whole, on one line
