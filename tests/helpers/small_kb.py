"""A small bilingual KB in two folders, for the framework adapters' tests."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.corpus import EN_GUIDE, ZH_NOTES, ZH_REGULATION, fast_config
from zhiku.service import KnowledgeBase


def build_small_kb(root: Path) -> tuple[KnowledgeBase, Path]:
    """zh/ (a regulation with headings, an employee handbook) and en/ (a gardening guide)."""
    docs = root / "docs"
    (docs / "zh").mkdir(parents=True)
    (docs / "en").mkdir()
    (docs / "zh" / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    (docs / "zh" / "员工手册.txt").write_text(ZH_NOTES, encoding="utf-8")
    (docs / "en" / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    kb = KnowledgeBase.open(str(root / "kb"), config=fast_config())
    kb.ingest([docs])
    return kb, docs
