"""Per-KB synonyms (issue 12, item 5): real KBs in tmp_path, the real jieba tokenizer, real indexes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhiku.cli.app import main
from zhiku.config import KBConfig, MethodConfig, TokenizerConfig
from zhiku.errors import ConfigError
from zhiku.service import KnowledgeBase
from zhiku.text.synonyms import load_synonyms

SYNONYMS = """\
# 同义词：一行一组
计算机 电脑 微机
加班费 加班工资 加班报酬

holiday, vacation, paid leave   # with commas, a phrase is one word of the group
"""
DOCS = [
    ("computer.md", "计算机", "计算机软件著作权登记办法。"),
    ("pay.md", "报酬", "用人单位安排劳动者延长工作时间的，应当依法支付加班报酬。"),
    ("wage.md", "工资", "工资应当以货币形式按月支付给劳动者本人，不得克扣。"),
    ("leave.md", "Leave", "Every employee is entitled to paid leave after one year of service."),
    ("garden.md", "Garden", "Tomatoes need six hours of direct sunlight every day."),
]
METHODS = {"bm25": MethodConfig(kind="bm25"), "tfidf": MethodConfig(kind="tfidf", enabled=True)}


def open_kb(root: Path, synonyms: str | None = SYNONYMS) -> KnowledgeBase:
    root.mkdir(parents=True)
    if synonyms is not None:
        (root / "synonyms.txt").write_text(synonyms, encoding="utf-8")
    tok = TokenizerConfig(synonyms="synonyms.txt" if synonyms is not None else None)
    kb = KnowledgeBase.open(str(root), config=KBConfig(methods=METHODS, tokenizer=tok))
    kb.add_texts(DOCS)
    return kb


def sources(kb: KnowledgeBase, query: str, method: str = "bm25") -> list[str]:
    return [h.doc.source for h in kb.search(query, 3, method) if h.doc is not None]


@pytest.mark.parametrize("method", ["bm25", "tfidf"])
def test_a_synonym_finds_a_passage_that_only_uses_the_other_word(tmp_path: Path, method: str) -> None:
    with open_kb(tmp_path / "plain", synonyms=None) as plain:
        assert "computer.md" not in sources(plain, "电脑", method)  # fails without the file
        assert "leave.md" not in sources(plain, "vacation", method)
    with open_kb(tmp_path / "kb") as kb:
        assert sources(kb, "电脑", method) == ["computer.md"]
        assert sources(kb, "微机软件怎么登记", method)[0] == "computer.md"
        assert sources(kb, "加班工资", method)[0] == "pay.md"
        assert sources(kb, "vacation", method) == ["leave.md"]  # a phrase of the group, stemmed
        assert sources(kb, "paid leave", method)[0] == "leave.md"
        terms = kb.tokenizer.query_terms("电脑 the holidays")
        assert terms.plain == [] and [g[0] for g in terms.groups] == [("电脑",), ("holiday",)]
        assert terms.groups[1][1:] == (("vacat",), ("paid", "leav"))


def test_a_group_word_is_one_token_in_its_kb_only(tmp_path: Path) -> None:
    with open_kb(tmp_path / "kb") as kb:
        assert kb.tokenizer("加班工资和加班报酬") == ["加班工资", "加班报酬"]
        # a second KB in the same process, without a synonyms file, is unaffected
        with open_kb(tmp_path / "plain", synonyms=None) as plain:
            assert len(plain.tokenizer("加班工资")) > 1
            assert plain.tokenizer.query_terms("电脑").groups == []
            assert "computer.md" not in sources(plain, "电脑")
            assert "synonyms" not in plain.manifest("bm25")["tokenizer"]  # type: ignore[index]
        assert kb.tokenizer("加班工资") == ["加班工资"]
        assert sources(kb, "电脑") == ["computer.md"]


def test_a_traditional_query_or_file_word_expands(tmp_path: Path) -> None:
    with open_kb(tmp_path / "kb") as kb:
        assert sources(kb, "電腦") == ["computer.md"]  # Traditional query, Simplified file and passage
        assert kb.tokenizer("加班工資") == ["加班工资"]
    with open_kb(tmp_path / "trad", synonyms="計算機 電腦 微機\n") as kb:
        assert sources(kb, "电脑", "tfidf") == ["computer.md"]  # Traditional file, Simplified query


def test_a_changed_file_makes_the_kb_stale_and_a_rechunk_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "kb"
    with open_kb(root, synonyms="加班费 加班工资\n") as kb:
        assert sources(kb, "加班工资") == []  # the passage says 加班报酬, in no group yet
        assert all(s.fresh for s in kb.status()) and kb.chunking_stale() is None
    (root / "synonyms.txt").write_text("加班费 加班工资 加班报酬 劳动报酬\n", encoding="utf-8")
    with KnowledgeBase.open(str(root)) as kb:
        assert not kb.method_status("bm25").fresh  # new words for jieba: the tokens change
        assert "tokenizer.synonyms" in (kb.chunking_stale() or "")
    assert main(["status", "--kb", str(root)]) == 0
    assert "zhiku ingest --rechunk" in capsys.readouterr().out
    assert main(["ingest", "--rechunk", "--kb", str(root)]) == 0
    capsys.readouterr()
    with KnowledgeBase.open(str(root)) as kb:
        assert all(s.fresh for s in kb.status()) and kb.chunking_stale() is None
        assert sources(kb, "加班工资")[0] == "pay.md"
    # Regrouping words jieba already has changes no token: nothing is stale, queries follow at once.
    (root / "synonyms.txt").write_text("加班费 加班工资\n加班报酬 劳动报酬\n", encoding="utf-8")
    with KnowledgeBase.open(str(root)) as kb:
        assert all(s.fresh for s in kb.status()) and kb.chunking_stale() is None
        assert "pay.md" not in sources(kb, "加班工资") and sources(kb, "劳动报酬") == ["pay.md"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("加班费 加班工资\n年休假\n".encode(), "line 2: '年休假' is a group of one word"),
        ("加班费 加班工资\n\n加班費，津贴\n".encode(), "line 3: '加班费' is already in the group on line 1"),
        ("加班费 加班工资\n".encode() + "年休假 年假\n".encode("gbk"), "line 2: not UTF-8"),
    ],
)
def test_a_bad_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    path = tmp_path / "synonyms.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        load_synonyms(str(path))
    line = e.value.one_line()
    assert expected in line and str(path) in line and "\n" not in line
    assert e.value.hint  # how to fix it
    root = tmp_path / "kb"
    with KnowledgeBase.open(str(root), config=KBConfig(methods=METHODS)) as kb:
        kb.add_texts(DOCS[:1])
    KBConfig(methods=METHODS, tokenizer=TokenizerConfig(synonyms=str(path))).save(root / "zhiku.toml")
    assert main(["search", "加班费", "--kb", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err


def test_a_missing_file_says_which_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the synonyms file .*nope\.txt.*tokenizer\.synonyms"):
        KnowledgeBase.open(
            str(tmp_path / "kb"), config=KBConfig(tokenizer=TokenizerConfig(synonyms="nope.txt"))
        )


def test_a_relative_user_dictionary_is_fresh_and_its_edits_need_a_rechunk(tmp_path: Path) -> None:
    """Before: a relative ``user_dict`` showed "chunks STALE" right after ingest (an absolute path was
    recorded), and an edited dictionary only made the indexes stale, which a rebuild from the cached
    (old) tokens marked fresh again: the new word was never found."""
    root = tmp_path / "kb"
    root.mkdir()
    (root / "dict.txt").write_text("年休假 100 n\n", encoding="utf-8")
    cfg = KBConfig(
        methods={"bm25": MethodConfig(kind="bm25")}, tokenizer=TokenizerConfig(user_dict="dict.txt")
    )
    with KnowledgeBase.open(str(root), config=cfg) as kb:
        kb.add_texts([("a.md", "a", "职工带薪年休假条例。")])
        assert kb.chunking_stale() is None
        assert (
            json.loads(kb.catalog.get_meta("chunk_settings") or "{}")["tokenizer"]["user_dict"] != "dict.txt"
        )
    (root / "dict.txt").write_text("年休假 100 n\n职工带薪 100 n\n", encoding="utf-8")
    with KnowledgeBase.open(str(root)) as kb:
        assert "tokenizer.user_dict" in (kb.chunking_stale() or "")
        kb.rechunk()
        assert kb.chunking_stale() is None and kb.search("职工带薪", 1)[0].doc.source == "a.md"  # type: ignore[union-attr]
