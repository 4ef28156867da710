"""`zhiku ask` with bad input: a clear line or a sensible answer, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.corpus import fast_config

from zhiku.cli.app import main
from zhiku.config import GeneratorConfig, MethodConfig
from zhiku.service import KnowledgeBase

TEXT = "# 甲办法\n\n保险机构应当在十日内支付保险金。但是，另有约定的除外。\n"


def make_kb(tmp_path: Path, name: str, docs: bool = True, dense_option: bool = False) -> Path:
    root = tmp_path / name
    cfg = fast_config()
    gen = GeneratorConfig(kind="extractive", options={"dense": True} if dense_option else {})
    cfg = cfg.updated(methods={"bm25": MethodConfig(kind="bm25")}, generator=gen.model_dump())
    with KnowledgeBase.open(str(root), config=cfg) as kb:
        if docs:
            folder = tmp_path / f"{name}-docs"
            folder.mkdir()
            (folder / "a.md").write_text(TEXT, encoding="utf-8")
            kb.ingest([str(folder)])
    return root


def ask(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["ask", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_empty_or_blank_question_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = make_kb(tmp_path, "k")
    for q in ("", "   \n\t"):
        code, out, err = ask(capsys, q, "--kb", str(kb))
        assert code != 0 and "the query is empty" in err and "Traceback" not in err + out


def test_a_10000_character_question_gets_an_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = make_kb(tmp_path, "k")
    question = ("保险金多久支付" * 1500)[:10_000]
    code, out, err = ask(capsys, question, "--kb", str(kb), "-m", "bm25", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert "十日内" in data["answer"] and data["citations"][0]["n"] == 1


def test_a_kb_with_no_chunks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = make_kb(tmp_path, "empty", docs=False)
    code, out, err = ask(capsys, "保险金多久支付？", "--kb", str(kb), "-m", "bm25", "--json")
    assert code != 0 and "Traceback" not in out + err
    assert err.startswith("error: knowledge base 'empty' is empty") and "zhiku ingest" in err
    # Below the faces, no passages is a refusal with nothing to list, not an error.
    from zhiku.generate.answer import answer_question
    from zhiku.generate.extractive import NOT_FOUND, ExtractiveGenerator

    answer = answer_question("保险金多久支付？", [], ExtractiveGenerator())
    assert answer.text == NOT_FOUND["zh"] and not answer.found and answer.citations == ()


def test_dense_not_built_falls_back_to_words_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = make_kb(tmp_path, "k", dense_option=True)  # asks for dense reading; the KB searches bm25
    code, out, err = ask(capsys, "保险金多久支付？", "--kb", str(kb), "-m", "bm25", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["scoring"] == "lexical" and "十日内" in data["answer"]
    assert "但是，另有约定的除外" in data["answer"]  # the proviso comes with its rule
    [cite] = data["citations"]
    start, end = cite["spans"][0]
    assert end > start >= cite["start"]
