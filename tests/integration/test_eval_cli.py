"""`zhiku eval` end to end on tiny datasets the tests write: SQuAD (Chinese and English), BEIR, RGB,
a zhiku QA set against a KB ingested here, and every bad dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from zhiku.cli.app import main

HASHING = "--set=methods.dense.options.embedder=hashing"

ZH_PARAGRAPHS = [
    (
        "熊猫",
        "大熊猫是中国特有的哺乳动物，主要栖息在四川、陕西和甘肃的山区竹林中，以竹子为主要食物。",
        "大熊猫主要吃什么食物？",
        "竹子",
    ),
    (
        "长城",
        "长城是古代中国为抵御北方游牧民族而修筑的军事工程，东起山海关，西至嘉峪关，总长超过两万公里。",
        "长城西端的关口叫什么？",
        "嘉峪关",
    ),
    (
        "茶叶",
        "龙井茶产于浙江杭州西湖一带，是绿茶的代表，以色绿、香郁、味甘、形美四绝著称。",
        "龙井茶产于哪个城市？",
        "杭州",
    ),
    (
        "高铁",
        "京沪高速铁路连接北京和上海，全长一千三百一十八公里，最高运营时速三百五十公里。",
        "京沪高铁全长多少公里？",
        "一千三百一十八公里",
    ),
    (
        "臺灣",
        "臺灣的玉山海拔三千九百五十二公尺，是東北亞第一高峰，山頂冬季常有積雪。",
        "玉山的海拔是多少？",
        "三千九百五十二公尺",
    ),
]
EN_PARAGRAPHS = [
    (
        "Volcano",
        "Mount Etna is an active stratovolcano on the east coast of Sicily, Italy, and erupts often.",
        "Where is Mount Etna located?",
        "Sicily",
    ),
    (
        "Coffee",
        "Espresso is brewed by forcing nearly boiling water through finely ground coffee beans.",
        "How is espresso brewed?",
        "forcing nearly boiling water",
    ),
    (
        "Chess",
        "In chess, castling moves the king two squares towards a rook, which jumps over the king.",
        "Which piece moves two squares when castling?",
        "the king",
    ),
    (
        "Tides",
        "Ocean tides are caused mainly by the gravitational pull of the Moon on the rotating Earth.",
        "What mainly causes ocean tides?",
        "the gravitational pull of the Moon",
    ),
]


def squad(paragraphs: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    return {
        "version": "1.1",
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": ctx,
                        "qas": [
                            {
                                "id": f"q{i}",
                                "question": q,
                                "answers": [{"text": a, "answer_start": ctx.find(a)}],
                            }
                        ],
                    }
                ],
            }
            for i, (title, ctx, q, a) in enumerate(paragraphs)
        ],
    }


def write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def results(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / "results.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def methods_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["method"]: m for m in data["methods"]}


def test_squad_zh_three_methods(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ds = write(tmp_path / "zh.json", squad(ZH_PARAGRAPHS))
    out_dir = tmp_path / "report"
    code, out, err = run(
        capsys, "eval", str(ds), "--methods", "bm25,dense,hybrid", "--out", str(out_dir), HASHING
    )
    assert code == 0, err
    assert out.startswith("zh: 5 queries, k = 10")
    header = out.splitlines()[1].split()
    assert header[:8] == ["method", "hit@1", "hit@3", "hit@5", "hit@10", "MRR@10", "nDCG@10", "recall@10"]
    assert [line.split()[0] for line in out.splitlines()[3:6]] == ["bm25", "dense", "hybrid"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["chart.png", "report.md", "results.json"]

    data = results(out_dir)
    by = methods_of(data)
    assert by["bm25"]["metrics"]["hit@1"] == 1.0  # jieba makes each question find its paragraph
    assert by["bm25"]["index_bytes"] > 0 and by["bm25"]["build_seconds"] >= 0
    # A fusion costs what its parts cost.
    assert by["hybrid"]["index_bytes"] == by["bm25"]["index_bytes"] + by["dense"]["index_bytes"]
    q = by["bm25"]["per_query"][0]
    assert q["retrieved"][0] == q["relevant"][0] and q["first_rank"] == 1 and q["hit"] is True
    assert q["scores"]["hit@1"] == 1.0 and q["snippets"] == []  # texts only where something else came first
    assert data["settings"]["language"] == "zh" and data["settings"]["passages"] == 5
    assert "zhiku eval" in data["command"] and "--methods bm25,dense,hybrid" in data["command"]

    md = (out_dir / "report.md").read_text(encoding="utf-8")
    assert "| bm25 | 1.000 |" in md and "![hit@k and latency per method](chart.png)" in md
    assert (out_dir / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_squad_en_answers_and_fusion(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ds = write(tmp_path / "en.json", squad(EN_PARAGRAPHS))
    out_dir = tmp_path / "r"
    code, out, err = run(
        capsys,
        "eval",
        str(ds),
        "-m",
        "bm25,bm25+dense",
        "--answers",
        "--out",
        str(out_dir),
        "--k",
        "3",
        HASHING,
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["methods"]) == {"bm25", "bm25+dense"}
    bm25 = summary["methods"]["bm25"]
    assert bm25["hit@1"] == 1.0 and "hit@5" not in bm25  # cut-offs above k are not reported
    # The extractive answerer quotes the right sentence, with a citation of the right passage.
    assert bm25["answer_contains"] == 1.0 and bm25["citation_ok"] == 1.0 and bm25["answer_f1"] > 0.2
    per_query = methods_of(results(out_dir))["bm25"]["per_query"]
    assert all(q["answer"] and "answer_f1" in q["scores"] for q in per_query)
    # Refusals measured: none on answerable questions whose passage is first, a median length,
    # and each question asked again without its own passage (the unanswerable variant).
    assert bm25["refused"] == 0.0 and bm25["false_refusal_rank1"] == 0.0 and bm25["answer_chars_p50"] > 0
    assert 0.0 <= bm25["unanswerable_refused"] <= 1.0
    assert all("unanswerable_refused" in q["scores"] for q in per_query)


def test_limit_samples_queries_with_a_seed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ds = write(tmp_path / "zh.json", squad(ZH_PARAGRAPHS))
    picked = []
    for seed in ("1", "1", "2"):
        code, out, err = run(
            capsys,
            "eval",
            str(ds),
            "-m",
            "bm25",
            "--limit",
            "2",
            "--seed",
            seed,
            "--out",
            str(tmp_path / f"o{len(picked)}"),
            "--json",
        )
        assert code == 0, err
        data = results(tmp_path / f"o{len(picked)}")
        assert data["settings"]["queries"] == 2 and data["settings"]["passages"] == 5  # corpus stays whole
        picked.append([q["query_id"] for q in data["methods"][0]["per_query"]])
    assert picked[0] == picked[1]


def test_default_methods_leave_out_an_english_model_on_chinese(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ds = write(tmp_path / "zh.json", squad(ZH_PARAGRAPHS))
    # The default dense method is e5, which reads Chinese: it is evaluated with its hybrid.
    code, out, err = run(capsys, "eval", str(ds), "--out", str(tmp_path / "e5"))
    assert code == 0, err
    assert [m["method"] for m in results(tmp_path / "e5")["methods"]] == [
        "bm25",
        "dense",
        "hybrid",
    ]  # not minilm
    # A dense method with an English-only model is left out of a Chinese evaluation, and says why.
    code, out, err = run(
        capsys, "eval", str(ds), "--out", str(tmp_path / "o"), "--set", "methods.dense.options.embedder=sbert"
    )
    assert code == 0, err
    data = results(tmp_path / "o")
    assert [m["method"] for m in data["methods"]] == ["bm25"]  # MiniLM is English-only: dense, hybrid out
    assert "dense" in data["settings"]["methods left out"] and "left out" in out


def test_beir_graded_qrels_and_duplicate_passages(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "beir"
    lines(
        folder / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces the risk of heart attack in adults."},
            {"_id": "d2", "title": "Aspirin", "text": "Aspirin reduces the risk of heart attack in adults."},
            {"_id": "d3", "title": "Vitamin D", "text": "Vitamin D deficiency is linked to weak bones."},
            {"_id": "d4", "title": "Sleep", "text": "Short sleep raises blood pressure in teenagers."},
            {"_id": "d5", "title": "Only a title", "text": ""},
        ],
    )
    lines(
        folder / "queries.jsonl",
        [
            {"_id": "1", "text": "aspirin heart attack risk"},
            {"_id": "2", "text": "vitamin D bones"},
            {"_id": "3", "text": "not judged in the test split"},
        ],
    )
    write(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n1\td2\t2\n1\td3\t0\n2\td3\t1\n")
    out_dir = tmp_path / "o"
    code, out, err = run(capsys, "eval", str(folder), "-m", "bm25", "--out", str(out_dir))
    assert code == 0, err
    data = results(out_dir)
    assert data["settings"]["queries"] == 2 and data["settings"]["documents"] == 4  # d2 folded into d1
    metrics = data["methods"][0]["metrics"]
    # d2 has the text of d1: retrieving that text is retrieving d2, at rank 1.
    assert metrics["hit@1"] == 1.0 and metrics["ndcg@10"] == 1.0
    assert data["methods"][0]["per_query"][0]["retrieved"][0] == "d2"


def test_rgb_multi_positive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ds = lines(
        tmp_path / "rgb.json",
        [
            {
                "id": 0,
                "query": "2022年冬奥会在哪里举办？",
                "answer": ["北京"],
                "positive": [
                    "2022年冬季奥运会在北京举办，张家口承办雪上项目。",
                    "北京成为首个双奥之城，举办了2022年冬奥会。",
                ],
                "negative": ["2016年夏季奥运会在里约热内卢举办。"],
            },
            {
                "id": 1,
                "query": "世界杯2022年冠军是哪个国家？",
                "answer": [["阿根廷"]],
                "positive": ["阿根廷在2022年卡塔尔世界杯决赛中点球击败法国，夺得冠军。"],
                "negative": ["法国队在2018年世界杯夺冠。"],
            },
        ],
    )
    code, out, err = run(capsys, "eval", str(ds), "-m", "bm25", "--out", str(tmp_path / "o"), "--answers")
    assert code == 0, err
    data = results(tmp_path / "o")
    assert data["settings"]["format"] == "rgb"
    metrics = data["methods"][0]["metrics"]
    assert metrics["hit@1"] == 1.0 and metrics["recall@10"] == 1.0 and metrics["answer_contains"] == 1.0


@pytest.fixture
def laws_kb(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    write(
        docs / "保险法.md",
        "# 保险法\n\n第一条 保险合同成立后，投保人可以解除合同。\n\n"
        "第二条 保险人应当及时支付保险金，不得拖延。\n",
    )
    write(
        docs / "劳动法.md",
        "# 劳动法\n\n第一条 劳动者每日工作时间不超过八小时。\n\n第二条 用人单位应当支付加班工资。\n",
    )
    kb = tmp_path / "kb"
    code, _, err = run(capsys, "ingest", str(docs), "--kb", str(kb))
    assert code == 0, err
    return kb


def test_zhiku_qa_against_a_kb(capsys: pytest.CaptureFixture[str], tmp_path: Path, laws_kb: Path) -> None:
    qa = lines(
        tmp_path / "qa.jsonl",
        [
            {"question": "投保人可以解除保险合同吗", "evidence": "投保人可以解除合同", "answer": "可以"},
            {"question": "每天工作多长时间", "evidence": "不超过八小时", "doc": "劳动法.md"},
            {"question": "加班工资谁来付", "doc": "劳动法"},
            {"question": "第一条写了什么", "evidence": "第一条", "doc": "保险法"},
        ],
    )
    out_dir = tmp_path / "o"
    code, out, err = run(
        capsys, "eval", str(qa), "--kb", str(laws_kb), "-m", "bm25", "--out", str(out_dir), "--answers"
    )
    assert code == 0, err
    data = results(out_dir)
    assert data["settings"]["format"] == "zhiku-qa" and data["settings"]["documents"] == 2
    m = data["methods"][0]
    assert m["metrics"]["hit@3"] == 1.0 and m["metrics"]["recall@10"] == 1.0
    per = {q["query_id"]: q for q in m["per_query"]}
    assert per["q3"]["relevant"] == [str(laws_kb.parent / "docs" / "劳动法.md")]  # judged by document
    assert "evidence: 第一条" in per["q4"]["gold_snippet"]
    assert 0 < m["metrics"]["citation_ok"] <= 1.0 and "answer_f1" in per["q1"]["scores"]


def test_zhiku_qa_ad_hoc_fusion_is_not_saved(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, laws_kb: Path
) -> None:
    qa = lines(tmp_path / "qa.jsonl", [{"question": "加班工资", "doc": "劳动法"}])
    before = (laws_kb / "zhiku.toml").read_text(encoding="utf-8")
    code, _, err = run(
        capsys, "eval", str(qa), "--kb", str(laws_kb), "-m", "bm25+bm25", "--out", str(tmp_path / "o")
    )
    assert code == 0, err
    assert (laws_kb / "zhiku.toml").read_text(encoding="utf-8") == before


BAD_CASES = {
    "empty": ("empty.json", "", "file is empty"),
    "malformed": ("bad.json", '{"data": [', "invalid JSON at line 1"),
    "bad line": ("bad.jsonl", '{"question": "a", "doc": "x"}\n{oops\n', "line 2 is not valid JSON"),
    "unknown": ("other.json", '{"rows": [1, 2]}', "unknown dataset format"),
    "not a dataset": ("list.json", "[1, 2, 3]", "unrecognised JSON structure"),
    "missing": ("nothing-here.json", None, "no such file or folder"),
    "no questions": (
        "noq.json",
        json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "c"}]}]}),
        "no usable queries",
    ),
    "squad layout": ("layout.json", json.dumps({"data": [{"title": "t"}]}), "has no 'paragraphs' list"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_datasets_get_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    name, content, message = BAD_CASES[case]
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "eval", str(path), "-m", "bm25", "--out", str(tmp_path / "o"))
    assert code == 2 if case != "missing" else code != 0
    lines_ = err.strip().splitlines()
    assert len(lines_) == 1 and lines_[0].startswith("error: ") and message in lines_[0], err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_bad_beir_folder_and_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "beir"
    lines(folder / "corpus.jsonl", [{"_id": "d1", "text": "x"}])
    lines(folder / "queries.jsonl", [{"_id": "1", "text": "x"}])
    code, _, err = run(capsys, "eval", str(folder))
    assert code == 2 and "qrels/test.tsv is missing" in err
    ds = write(tmp_path / "zh.json", squad(ZH_PARAGRAPHS))
    code, _, err = run(capsys, "eval", str(ds), "--format", "csv")
    assert code == 2 and "unknown dataset format 'csv'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-m", "nope"], "unknown method 'nope'"),
        (["-m", "bm25+"], "is not a fusion of methods"),
        (["--set", "chunking.size=abc"], "--set: chunking.size"),
        (["--set", "chunking"], "is not KEY=VALUE"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--k", "0"], "k must be at least 1"),
        (["--config", "missing.toml"], "no such config file"),
        (["--kb", "somekb"], "--config and --set change the temporary KB"),
    ],
)
def test_bad_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    ds = write(tmp_path / "zh.json", squad(ZH_PARAGRAPHS))
    extra = [HASHING] if "--kb" in argv else []
    code, _, err = run(capsys, "eval", str(ds), *argv, *extra, "--out", str(tmp_path / "o"))
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err


def test_zhiku_qa_needs_a_kb_and_squad_refuses_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, laws_kb: Path
) -> None:
    qa = lines(tmp_path / "qa.jsonl", [{"question": "加班工资", "doc": "劳动法"}])
    code, _, err = run(capsys, "eval", str(qa))
    assert code == 2 and "Evaluate it against a knowledge base with --kb NAME" in err
    ds = write(tmp_path / "zh.json", squad(ZH_PARAGRAPHS))
    code, _, err = run(capsys, "eval", str(ds), "--kb", str(laws_kb))
    assert code == 2 and "--kb is for zhiku QA sets" in err
    code, _, err = run(capsys, "eval", str(qa), "--kb", str(laws_kb), "-m", "tfidf2")
    assert code != 0 and "unknown method 'tfidf2'" in err


def test_config_file_and_workdir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ds = write(tmp_path / "en.json", squad(EN_PARAGRAPHS))
    cfg = write(
        tmp_path / "zhiku.toml",
        "[chunking]\nsize = 50\nmin_size = 10\n\n"
        '[methods.dense]\nkind = "dense"\n[methods.dense.options]\nembedder = "hashing"\n',
    )
    work = tmp_path / "work"
    code, _, err = run(
        capsys,
        "eval",
        str(ds),
        "-m",
        "dense",
        "--config",
        str(cfg),
        "--workdir",
        str(work),
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 0, err
    data = results(tmp_path / "o")
    assert data["settings"]["chunking"]["size"] == 50 and data["settings"]["chunks"] > 4  # split passages
    assert data["settings"]["chunks fetched per query"] == 30
    assert (work / "kb" / "catalog.sqlite").exists()  # kept for inspection
    code, _, err = run(
        capsys, "eval", str(ds), "-m", "bm25", "--workdir", str(work), "--out", str(tmp_path / "p")
    )
    assert code == 2 and "is not empty" in err


def test_subprocess_once(tmp_path: Path) -> None:
    ds = write(tmp_path / "en.json", squad(EN_PARAGRAPHS))
    env = {**os.environ, "ZHIKU_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "zhiku", "eval", str(ds), "--methods", "bm25", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bm25" in proc.stdout and "wrote results.json, report.md, chart.png" in proc.stdout
    assert proc.stderr == ""  # no progress bars when stderr is not a terminal
    bad = subprocess.run(
        [sys.executable, "-m", "zhiku", "eval", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1
