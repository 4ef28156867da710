"""Loader conformance: every registered extension, one suite.

Each loader must: read its sample (made here, see tests/helpers/documents.py) with the expected
phrase; report pages as ascending offsets that each start a paragraph of the text; produce chunks
whose offsets map back to the stored text and whose heading path carries the document's headings;
and refuse a bad file of its kind with one clear line, losing nothing already stored.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.corpus import fast_config
from tests.helpers.documents import SAMPLES, bad_sample, cjk_font

from zhiku.config import ChunkingConfig, KBConfig, MethodConfig
from zhiku.ingest.loaders import LOADERS, load_bytes
from zhiku.ingest.pipeline import parse_text
from zhiku.service import KnowledgeBase

EXTENSIONS = LOADERS.names()
IMAGES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def needs_font(suffix: str) -> None:
    if suffix in IMAGES and cjk_font() is None:
        pytest.skip("no CJK font to render the sample image (apt-get install fonts-wqy-zenhei)")


def test_every_registered_loader_has_a_sample_maker() -> None:
    assert set(EXTENSIONS) == set(SAMPLES), "add a sample maker to tests/helpers/documents.py"


@pytest.mark.parametrize("suffix", EXTENSIONS)
def test_loader_reads_its_sample_with_pages_headings_and_offsets(tmp_path: Path, suffix: str) -> None:
    needs_font(suffix)
    data, phrase, heading = SAMPLES[suffix]()
    loaded = load_bytes(tmp_path / f"sample{suffix}", data)
    assert phrase in loaded.text
    assert loaded.title and loaded.format

    offsets = [offset for offset, _ in loaded.pages]
    numbers = [number for _, number in loaded.pages]
    assert offsets == sorted(set(offsets)) and numbers == sorted(set(numbers))
    assert all(n >= 1 for n in numbers)
    for offset in offsets:  # a page starts the text or a paragraph
        assert 0 <= offset < len(loaded.text)
        assert offset == 0 or loaded.text[offset - 2 : offset] == "\n\n"

    # min_size=0: the samples' sections are tiny, and would otherwise be merged into one chunk.
    config = KBConfig(chunking=ChunkingConfig(min_size=0))
    parsed = parse_text("sample", loaded.text, loaded.title, loaded.format, "h", config, pages=loaded.pages)
    assert parsed.chunks
    for record in parsed.chunks:
        c = record.chunk
        span = parsed.doc.text[c.start : c.end]
        assert c.text == span or c.text.endswith("\n" + span)  # a table's header may come first
        if loaded.pages:
            assert c.page >= 1
    if heading:
        assert any(heading in r.chunk.heading for r in parsed.chunks), [
            r.chunk.heading for r in parsed.chunks
        ]


@pytest.mark.parametrize("suffix", EXTENSIONS)
def test_bad_file_is_one_clear_line_and_loses_nothing(tmp_path: Path, suffix: str) -> None:
    needs_font(suffix)
    methods = {"bm25": MethodConfig(kind="bm25")}
    config = fast_config().updated(methods=methods, default_method="bm25")
    docs = tmp_path / "docs"
    docs.mkdir()
    path = docs / f"report{suffix}"
    data, phrase, _ = SAMPLES[suffix]()
    path.write_bytes(data)
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config) as kb:
        first, _ = kb.ingest([path])
        assert first.added == [str(path.resolve())]
        before = kb.catalog.chunk_count()

        path.write_bytes(bad_sample(suffix))  # the same file, now damaged
        report, _ = kb.ingest([path])
        assert len(report.failed) == 1 and not report.added and not report.updated
        failed_path, line = report.failed[0]
        assert failed_path == str(path.resolve()) and "\n" not in line and path.name in line
        # The good version stays searchable.
        assert kb.catalog.chunk_count() == before
        assert kb.catalog.content_hash_of(str(path.resolve())) is not None


def test_importing_loaders_imports_no_parser() -> None:
    heavy = {
        "PIL",
        "openpyxl",
        "pptx",
        "pdfplumber",
        "pypdfium2",
        "rapidocr_onnxruntime",
        "onnxruntime",
        "opencc",
    }
    code = (
        "import sys, zhiku.ingest.loaders; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
