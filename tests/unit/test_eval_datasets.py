"""Dataset loading: each format from tiny files written here, and every malformed case."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zhiku.errors import DatasetError, UsageError
from zhiku.eval.datasets import judge_zhiku_qa, load_dataset


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


SQUAD = {
    "version": "v1.0",
    "data": [
        {
            "title": "臺灣",
            "paragraphs": [
                {
                    "id": "TW_0",
                    "context": "臺灣位於東亞，首都是臺北。",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "臺灣的首都是哪裡？",
                            "answers": [{"text": "臺北"}, {"text": "臺北"}],
                        },
                        {"id": "q-empty", "question": "  ", "answers": [{"text": "x"}]},
                    ],
                },
                {
                    "context": "The capital of France is Paris.",
                    "qas": [{"id": "q2", "question": "Capital?", "answers": [{"text": "Paris"}]}],
                },
            ],
        },
        {
            "title": "dup",
            "paragraphs": [
                # the same text again under another article: one passage, both questions point to it
                {
                    "id": "DUP_0",
                    "context": "臺灣位於東亞，首都是臺北。",
                    "qas": [{"id": "q3", "question": "臺灣在哪裡？", "answers": [{"text": "東亞"}]}],
                },
            ],
        },
    ],
}


def test_squad_format(tmp_path: Path) -> None:
    ds = load_dataset(write_json(tmp_path / "drcd.json", SQUAD))
    assert ds.format == "squad" and ds.name == "drcd"
    assert set(ds.corpus) == {"TW_0", "臺灣#1"}  # own id, else title#index
    assert ds.corpus["TW_0"].title == "臺灣"
    assert ds.queries == {"q1": "臺灣的首都是哪裡？", "q2": "Capital?", "q3": "臺灣在哪裡？"}
    assert ds.qrels == {"q1": {"TW_0": 1}, "q2": {"臺灣#1": 1}, "q3": {"TW_0": 1}}
    assert ds.answers["q1"] == ["臺北"]  # de-duplicated
    assert load_dataset(tmp_path / "drcd.json", fmt="squad").queries == ds.queries


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "T1", "text": "alpha"},
        {"_id": "d2", "title": "", "text": "beta"},
        {"_id": 3, "text": "gamma"},
    ]
    write_lines(root / "corpus.jsonl", corpus)
    queries = [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "second"}, {"_id": "q3", "text": "none"}]
    write_lines(root / "queries.jsonl", queries)
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq1\t3\t0\nq2\t3\t1\n", encoding="utf-8"
    )
    return root


def test_beir_format(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "tiny-beir")
    ds = load_dataset(root)
    assert ds.format == "beir" and ds.name == "tiny-beir"
    assert len(ds.corpus) == 3 and ds.corpus["d1"].title == "T1" and ds.corpus["3"].text == "gamma"
    assert ds.queries == {"q1": "first", "q2": "second"}  # q3 has no qrels
    assert ds.qrels == {"q1": {"d1": 2, "d2": 1}, "q2": {"3": 1}}  # graded kept, score 0 dropped
    assert load_dataset(root / "corpus.jsonl").queries == ds.queries


def test_beir_missing_split_and_files(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "b")
    with pytest.raises(DatasetError, match=r"qrels/dev\.tsv"):
        load_dataset(root, split="dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(DatasetError, match="queries.jsonl is missing"):
        load_dataset(root)
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nowhere")


def test_rgb_format(tmp_path: Path) -> None:
    shared = "同一段新闻"
    rows: list[dict[str, Any]] = [
        {"id": 0, "query": "死亡人数", "answer": ["12人"], "positive": ["p1 12人死亡", shared]},
        {"id": 1, "query": "交付量", "answer": [["131万", "1313851"]], "positive": ["p2"]},
        {"id": 2, "query": "成员国", "answer": ["中国", "日本"], "positive": ["p3"], "negative": []},
    ]
    rows[0]["negative"] = ["n1"]
    rows[1]["negative"] = [shared, "n1"]  # positive for query 0, a hard negative for query 1
    path = write_lines(tmp_path / "zh_refine.json", rows)
    ds = load_dataset(path)
    assert ds.format == "rgb"
    assert len(ds.corpus) == 5  # p1, shared, n1, p2, p3
    assert len(ds.qrels["0"]) == 2 and len(ds.qrels["1"]) == 1
    shared_id = next(pid for pid, p in ds.corpus.items() if p.text == shared)
    assert shared_id in ds.qrels["0"] and shared_id not in ds.qrels["1"]
    assert ds.answers["1"] == ["131万", "1313851"]  # nested list = alternatives
    assert ds.answers["2"] == ["中国 日本"]  # flat list = parts that are all needed
    assert ds.answer_parts["2"] == [["中国"], ["日本"]]


def test_zhiku_qa_format(tmp_path: Path) -> None:
    rows = [
        {
            "question": "农业保险由谁负责？",
            "answer": "国务院保险监督管理机构",
            "evidence": "负责 农业保险业务",
            "doc": "农业保险条例(2016-02-06).md",
        },
        {"id": "x", "question": "只有文档", "doc": ["保险法"]},
    ]
    path = write_lines(tmp_path / "qa.jsonl", rows)
    ds = load_dataset(path)
    assert ds.format == "zhiku-qa" and ds.corpus == {} and ds.qrels == {}
    assert list(ds.queries) == ["q1", "x"]
    assert ds.answers["q1"] == ["国务院保险监督管理机构"] and ds.answers["x"] == []
    assert ds.evidence["q1"] == ["负责 农业保险业务"] and ds.doc_gold["x"] == ["保险法"]
    # A JSON array of the same records is accepted too.
    arr = write_json(tmp_path / "qa.json", [{"question": "q?", "evidence": ["e"]}])
    assert load_dataset(arr).evidence == {"q1": ["e"]}


def test_judge_zhiku_qa() -> None:
    text = "第三条　国务院保险监督管理机构负责对农业\n保险业务实施监督管理。"
    src = "行政法规/农业保险条例(2016-02-06).md"
    # whitespace (incl. the ideographic space and the line break) and full-width forms are ignored
    assert judge_zhiku_qa(text, src, ["第三条 国务院", "农业保险业务"], [])
    assert judge_zhiku_qa("ＡＢＣ　１２３", "a.txt", ["ABC123"], [])
    assert not judge_zhiku_qa(text, src, ["保险法"], [])
    assert judge_zhiku_qa(text, src, [], ["农业保险条例(2016-02-06).md"])
    assert judge_zhiku_qa(text, src, [], ["行政法规/农业保险条例(2016-02-06)"])  # no extension
    windows = "C:\\kb\\行政法规\\农业保险条例(2016-02-06).md"
    assert judge_zhiku_qa(text, windows, [], ["行政法规/农业保险条例(2016-02-06).md"])
    assert not judge_zhiku_qa(text, src, [], ["保险条例(2016-02-06).md"])  # not on a path boundary
    # both given: both must hold
    assert judge_zhiku_qa(text, src, ["第三条"], ["农业保险条例(2016-02-06).md"])
    assert not judge_zhiku_qa(text, "民法商法/保险法.md", ["第三条"], ["农业保险条例(2016-02-06).md"])
    assert not judge_zhiku_qa(text, src, [], [])


def test_sample_is_seeded_and_keeps_corpus(tmp_path: Path) -> None:
    rows = [{"query": f"问题{i}", "answer": [str(i)], "positive": [f"p{i}"]} for i in range(20)]
    ds = load_dataset(write_lines(tmp_path / "rgb.jsonl", rows))
    a, b, c = ds.sample(5, seed=7), ds.sample(5, seed=7), ds.sample(5, seed=8)
    assert list(a.queries) == list(b.queries) and len(a.queries) == 5
    assert list(a.queries) != list(c.queries)
    assert set(a.qrels) == set(a.answers) == set(a.queries)
    assert a.corpus == ds.corpus
    assert list(a.queries) == [q for q in ds.queries if q in a.queries]  # original order kept
    assert ds.sample(100, seed=1) is ds
    with pytest.raises(UsageError):
        ds.sample(0)


RGB_LINE = '{"query": "a", "positive": ["p"]}\n'


def _bad(text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        p = tmp / "bad.json"
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text, encoding="utf-8")
        return p

    return make


def _beir_bad_qrels(tmp: Path) -> Path:
    root = write_beir(tmp / "b")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n", encoding="utf-8")
    return root


def _beir_no_id(tmp: Path) -> Path:
    root = write_beir(tmp / "b")
    write_lines(root / "corpus.jsonl", [{"text": "no id"}])
    return root


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (_bad(""), "is empty"),
        (_bad("  \n\n"), "is empty"),
        (_bad('{\n "data": [\n  {"title": "x",\n'), "invalid JSON at line"),
        (_bad(RGB_LINE + '{"query": "b", "positive": [\n'), "line 2 is not valid JSON"),
        (_bad('{"question": "a", "evidence": "e"}\n[1, 2]\n'), "line 2 is not a JSON object"),
        (_bad('{"foo": 1}\n'), "unknown dataset format"),
        (_bad("[1, 2, 3]"), "unrecognised JSON structure"),
        (_bad('{"_id": "1", "text": "x"}\n'), "BEIR"),
        (_bad('{"data": [{"title": "t", "paragraphs": [{"qas": []}]}]}'), "has no 'context'"),
        (_bad('{"data": []}'), "no usable queries"),
        (_bad('{"question": "", "evidence": "e"}\n'), "has no 'question'"),
        (_bad('{"question": "q"}\n'), "no 'answer', 'evidence' or 'doc'"),
        (_bad(RGB_LINE + '{"query": "q", "answer": ["a"]}\n'), "line 2 has no 'query'"),
        (_bad(b'{"question": "\xff\xfe"}'), "not UTF-8"),
        (_beir_bad_qrels, "line 2 is not 'query-id"),
        (_beir_no_id, "has no '_id'"),
    ],
)
def test_malformed_datasets(tmp_path: Path, make: Callable[[Path], Path], fragment: str) -> None:
    path = make(tmp_path)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    err = info.value
    assert fragment in err.message
    assert str(tmp_path) in err.message  # names the file
    assert "\n" not in err.one_line() and err.hint


def test_format_mismatch_and_unknown_format(tmp_path: Path) -> None:
    squad = write_json(tmp_path / "s.json", SQUAD)
    with pytest.raises(DatasetError, match="looks like SQuAD"):
        load_dataset(squad, fmt="rgb")
    with pytest.raises(DatasetError, match="unknown dataset format 'xml'"):
        load_dataset(squad, fmt="xml")
    qa = write_lines(tmp_path / "qa.jsonl", [{"question": "q", "evidence": "e"}])
    with pytest.raises(DatasetError, match="is not a squad file"):
        load_dataset(qa, fmt="squad")
    with pytest.raises(DatasetError, match="is a folder"):
        load_dataset(tmp_path, fmt="rgb")
