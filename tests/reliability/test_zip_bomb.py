"""Issue 14 (3): a ZIP package is checked by its unpacked size, not only its file size."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.zipbomb import docx_bomb
from zhiku.config import IngestConfig, KBConfig
from zhiku.errors import FileTooLargeError
from zhiku.ingest.loaders.zipsafe import check_zip
from zhiku.service import KnowledgeBase


def test_docx_bomb_is_refused_with_one_line_and_the_rest_is_ingested(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    bomb = docx_bomb(folder / "bomb.docx", unpacked_mb=80)
    assert bomb.stat().st_size < 1_000_000  # under every file-size limit
    (folder / "ok.md").write_text("# Notes\n\nThe kettle boils water for tea.\n", encoding="utf-8")
    with KnowledgeBase.open("k") as kb:
        report, _ = kb.ingest([folder])
        assert [Path(s).name for s in report.added] == ["ok.md"]
        [(source, line)] = report.failed
        assert Path(source).name == "bomb.docx"
        assert "unpacks to 81 MB, over the 64 MB limit" in line and "max_unpacked_mb" in line
        assert "\n" not in line


def test_limit_comes_from_the_kb_settings(tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "b.docx", unpacked_mb=80)
    cfg = KBConfig(ingest=IngestConfig(max_unpacked_mb=100))
    with KnowledgeBase.open("k", config=cfg) as kb:
        report, _ = kb.ingest([bomb])
        assert report.added and not report.failed


def test_actual_size_is_counted_not_only_declared(tmp_path: Path) -> None:
    data = docx_bomb(tmp_path / "b.docx", unpacked_mb=3).read_bytes()
    assert check_zip("b.docx", data, 4 * 2**20) > 3 * 2**20
    with pytest.raises(FileTooLargeError, match="unpacks to"):
        check_zip("b.docx", data, 2 * 2**20)


def test_text_bomb_does_not_reach_the_parser(tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "t.docx", unpacked_mb=70, in_text=True)
    with KnowledgeBase.open("k") as kb:
        report, _ = kb.ingest([bomb])
        assert not report.added and "zip bomb" in report.failed[0][1]
        assert kb.catalog.chunk_count() == 0
