"""Traditional and Simplified Chinese find each other; stored text and citations keep their script."""

from __future__ import annotations

from pathlib import Path

from zhiku.config import KBConfig, MethodConfig, TokenizerConfig
from zhiku.service import KnowledgeBase

TRADITIONAL = "第三條 保險機構應當在與被保險人達成賠償協議後十日內，將應賠償的保險金支付給被保險人。"
SIMPLIFIED = "第一条 公司实行弹性工作制，员工每天工作八小时，年假按照工龄计算。"
OTHER = "Tomatoes need at least six hours of direct sunlight every day."


def open_kb(tmp_path: Path, fold: bool = True) -> KnowledgeBase:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "條例.txt").write_text(TRADITIONAL, encoding="utf-8")
    (docs / "手册.txt").write_text(SIMPLIFIED, encoding="utf-8")
    (docs / "garden.txt").write_text(OTHER, encoding="utf-8")
    config = KBConfig(
        methods={"bm25": MethodConfig(kind="bm25")},
        default_method="bm25",
        tokenizer=TokenizerConfig(fold_traditional=fold),
    )
    kb = KnowledgeBase.open(str(tmp_path / ("kb" if fold else "kb-nofold")), config=config)
    kb.ingest([docs])
    return kb


def test_a_query_in_either_script_finds_a_passage_in_the_other(tmp_path: Path) -> None:
    with open_kb(tmp_path) as kb:
        hits = kb.search("保险机构 赔偿协议 保险金", k=1)  # Simplified query, Traditional text
        assert hits and hits[0].chunk is not None and hits[0].chunk.text == TRADITIONAL  # original script
        hits = kb.search("員工 彈性工作制 年假", k=1)  # Traditional query, Simplified text
        assert hits and hits[0].chunk is not None and hits[0].chunk.text == SIMPLIFIED
        answer = kb.ask("保险机构应当在几日内支付保险金？", k=1)
        assert answer.citations and "保險機構" in answer.citations[0].quote


def test_without_folding_the_scripts_do_not_meet(tmp_path: Path) -> None:
    with open_kb(tmp_path, fold=False) as kb:
        hits = kb.search("保险机构 赔偿协议 保险金", k=3)
        assert all(h.chunk is None or h.chunk.text != TRADITIONAL for h in hits)
