"""A KB's language (zh / en / mixed): worked out again when its content changes enough to move it."""

from __future__ import annotations

from pathlib import Path

from zhiku.config import KBConfig, MethodConfig
from zhiku.kb.methods import language_may_change
from zhiku.service import KnowledgeBase


def test_a_small_kb_follows_every_change(tmp_path: Path) -> None:
    config = KBConfig(methods={"bm25": MethodConfig(kind="bm25", enabled=True)})
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config) as kb:
        kb.add_texts([("zh.md", "劳动", "用人单位应当向劳动者支付加班费和工资。")])
        assert kb.language() == "zh"
        kb.add_texts(
            [(f"en{i}.md", "cats", f"The cat number {i} drinks milk every single morning.") for i in range(6)]
        )
        assert kb.language() == "en"  # one Chinese chunk among six English ones


def test_a_large_kb_waits_for_one_percent() -> None:
    # under 1,000 chunks: always; above, once the chunk count moved by 1% of what it was
    assert language_may_change(999, 1000)
    assert language_may_change(10, 10)
    assert not language_may_change(20_000, 20_001)
    assert not language_may_change(20_000, 19_801)
    assert language_may_change(20_000, 20_200)
    assert language_may_change(20_000, 19_800)
