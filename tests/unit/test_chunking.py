from __future__ import annotations

from zhiku.config import ChunkingConfig
from zhiku.ingest.chunking import chunk_text

LAW = """# 某某条例

## 第一章 总则

第一条 为了规范活动，制定本条例。
第二条 本条例适用于全国。

## 第二章 管理

第三条 管理机构应当依法履行职责。第四条不在行首，所以不是边界。
"""


def spans(text: str, **cfg: int) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.heading) for s in chunk_text(text, ChunkingConfig(**cfg))]


def test_chunks_are_exact_spans_with_heading_paths() -> None:
    out = spans(LAW, size=400, min_size=0)
    assert out == [
        ("第一条 为了规范活动，制定本条例。\n第二条 本条例适用于全国。", "某某条例 > 第一章 总则"),
        ("第三条 管理机构应当依法履行职责。第四条不在行首，所以不是边界。", "某某条例 > 第二章 管理"),
    ]


def test_article_markers_are_boundaries_when_packing_small_chunks() -> None:
    out = spans(LAW, size=60, min_size=0)
    assert out[0][0] == "第一条 为了规范活动，制定本条例。\n第二条 本条例适用于全国。"
    out = spans(LAW, size=20, min_size=0)
    assert out[0][0] == "第一条 为了规范活动，制定本条例。"  # never glued to half of 第二条
    assert out[1][0] == "第二条 本条例适用于全国。"


def test_long_paragraph_splits_at_sentence_ends_zh_and_en() -> None:
    text = "这是第一句。这是第二句！这是第三句？" + " First sentence here. Second one; third!"
    out = [t for t, _ in spans(text, size=10, min_size=0)]
    assert out[:3] == ["这是第一句。", "这是第二句！", "这是第三句？"]
    assert all(len(t) <= 10 for t in out)
    assert "".join(out).replace(" ", "") == text.replace(" ", "")


def test_a_sentence_longer_than_size_is_cut_at_size() -> None:
    text = "甲" * 250
    out = [t for t, _ in spans(text, size=100, min_size=0)]
    assert [len(t) for t in out] == [100, 100, 50]


def test_overlap_carries_whole_sentences() -> None:
    text = "".join(f"第{i}句话在这里。" for i in range(10))
    out = [t for t, _ in spans(text, size=30, overlap=10, min_size=0)]
    assert len(out) > 3
    for a, b in zip(out, out[1:], strict=False):
        last = a.split("。")[-2] + "。"
        assert b.startswith(last)  # the previous chunk's last sentence starts the next one


def test_tiny_section_merges_into_the_next() -> None:
    text = "# A\n\n短。\n\n# B\n\n" + "正文内容。" * 5
    out = spans(text, size=400, min_size=10)
    assert len(out) == 1 and out[0][0].startswith("短。")


def test_no_chunk_is_empty_and_offsets_increase() -> None:
    text = "\n\n".join(f"## H{i}\n\n" + f"Sentence number {i} is here. " * 8 for i in range(6))
    result = chunk_text(text, ChunkingConfig(size=120, min_size=0))
    assert all(text[s.start : s.end].strip() == text[s.start : s.end] != "" for s in result)
    assert [s.start for s in result] == sorted(s.start for s in result)


TABLE = (
    "# 财报\n\n营业收入如下表。\n\n| 年份 | 季度 | 营业收入 |\n| --- | --- | --- |\n"
    + "\n".join(f"| {2020 + i // 4}年 | 第{'一二三四'[i % 4]}季度 | {1000 + i * 37} |" for i in range(16))
    + "\n\n表后文字。"
)


def test_table_chunks_hold_whole_rows_and_repeat_the_header() -> None:
    result = chunk_text(TABLE, ChunkingConfig(size=120, min_size=0))
    header = "| 年份 | 季度 | 营业收入 |\n| --- | --- | --- |"
    rows = [s for s in result if "季度 |" in TABLE[s.start : s.end]]
    assert len(rows) >= 4
    assert header in TABLE[rows[0].start : rows[0].end] and rows[0].prefix == ""
    for s in rows[1:]:
        assert s.prefix == header
        lines = [line for line in TABLE[s.start : s.end].split("\n") if line.startswith("|")]
        assert lines and all(line.startswith("| 20") and line.endswith("|") for line in lines)
    seen = [line for s in rows for line in TABLE[s.start : s.end].split("\n") if line.startswith("| 20")]
    assert len(seen) == 16  # every row once, none cut


def test_a_row_longer_than_size_is_kept_whole() -> None:
    text = "| 列 | 说明 |\n| --- | --- |\n| 短 | 一 |\n| 长 | " + "很长的单元格内容" * 20 + " |\n| 末 | 二 |"
    result = chunk_text(text, ChunkingConfig(size=60, min_size=0))
    long_row = [s for s in result if "很长" in text[s.start : s.end]]
    assert len(long_row) == 1 and text[long_row[0].start : long_row[0].end].endswith(" |")


def test_pages_are_hard_boundaries_and_recorded() -> None:
    text = "第一页的文字。\n\n第二页的文字。"
    result = chunk_text(text, ChunkingConfig(size=400, min_size=0), pages=[(0, 1), (9, 2)])
    assert [(text[s.start : s.end], s.page) for s in result] == [("第一页的文字。", 1), ("第二页的文字。", 2)]
