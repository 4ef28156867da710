"""Reports: the terminal table, results.json, the Markdown report and the PNG chart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from zhiku.errors import DependencyMissingError
from zhiku.eval.report import (
    MethodResult,
    QueryResult,
    Report,
    format_table,
    worst_queries,
    write_chart_png,
    write_report_md,
    write_results_json,
)


def qr(qid: str, rank: int | None) -> QueryResult:
    retrieved = [f"{qid}-r{i}" for i in range(1, 11)]
    return QueryResult(
        query_id=qid,
        query=f"问题 {qid}",
        relevant=[f"{qid}-gold"],
        retrieved=retrieved,
        snippets=[f"snippet of {doc}\nsecond line" for doc in retrieved],
        first_rank=rank,
        hit=rank is not None,
        gold_snippet=f"gold passage for {qid}",
    )


METRICS = {
    "hit@1": 0.5,
    "hit@3": 0.75,
    "hit@5": 0.8,
    "hit@10": 0.9,
    "mrr@10": 0.6123,
    "ndcg@10": 0.65,
    "recall@10": 0.9,
    "precision@10": 0.09,
}


@pytest.fixture
def report() -> Report:
    per_query = [qr("a", 1), qr("b", None), qr("c", 4), qr("d", 2)]
    bm25 = MethodResult("bm25", dict(METRICS), 1.234, 5.6, 0.8, 3 * 1024 * 1024, per_query)
    dense_metrics = {**METRICS, "hit@1": 0.25, "em": 0.4}
    dense = MethodResult("sbert-faiss-hnsw", dense_metrics, 12.0, 30.25, 95.5, 150 * 1024**2, [qr("a", 1)])
    return Report(
        "cmrc2018_dev",
        [bm25, dense],
        k=10,
        created="2025-01-01T00:00:00+00:00",
        command="zhiku eval run cmrc2018_dev.json --methods bm25,sbert",
        settings={"seed": 0, "n": 200},
    )


def test_format_table_is_aligned(report: Report) -> None:
    text = format_table(report)
    lines = text.splitlines()
    assert len(lines) == 4  # header, rule, two methods
    header = lines[0].split()
    assert header[:8] == ["method", "hit@1", "hit@3", "hit@5", "hit@10", "MRR@10", "nDCG@10", "recall@10"]
    assert "em" in header  # extra metrics are shown, not dropped
    assert "precision@10" not in header
    assert len({len(line) for line in lines}) == 1  # right-aligned numbers: every line ends in one column
    assert lines[2].startswith("bm25 ") and lines[3].startswith("sbert-faiss-hnsw")
    assert "0.612" in lines[2] and "3.0" in lines[2] and "150.0" in lines[3]
    assert lines[2].split()[-5] == "-"  # bm25 has no "em"


def test_results_json(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.json"
    write_results_json(report, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == 1 and data["dataset"] == "cmrc2018_dev" and data["k"] == 10
    assert data["methods"][0]["per_query"][1]["first_rank"] is None
    assert data["methods"][1]["metrics"]["em"] == 0.4
    assert data["settings"] == {"n": 200, "seed": 0}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left


def test_worst_queries_order(report: Report) -> None:
    worst = worst_queries(report.methods[0], n=5)
    assert [q.query_id for q in worst] == ["b", "c", "d"]  # miss first, then rank 4, rank 2; never rank 1
    assert worst_queries(report.methods[1]) == []


def test_report_md(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    write_report_md(report, path, chart_name="chart.png")
    md = path.read_text(encoding="utf-8")
    assert md.startswith("# zhiku evaluation: cmrc2018_dev")
    assert "| method | hit@1 |" in md and "| bm25 | 0.500 |" in md
    assert "![hit@k and latency per method](chart.png)" in md
    assert "```\nzhiku eval run cmrc2018_dev.json --methods bm25,sbert\n```" in md
    assert "1 of 4 queries had no relevant passage in the top 10" in md
    assert "**问题 b** (`b`, no hit in top 10)" in md
    assert "gold: gold passage for b" in md
    assert "retrieved 1: `b-r1` snippet of b-r1 second line" in md  # newlines flattened
    assert "retrieved 4:" not in md  # top 3 only
    assert "first relevant at rank 4" in md
    assert "Every query had a relevant passage at rank 1." in md  # the dense method
    assert "- seed: `0`" in md


def test_chart_png(report: Report, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    path = tmp_path / "chart.png"
    write_chart_png(report, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    image = mpimg.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 800
    assert image.std() > 0.01  # something was drawn


def test_chart_without_matplotlib(report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(DependencyMissingError, match="matplotlib"):
        write_chart_png(report, tmp_path / "chart.png")
    assert not (tmp_path / "chart.png").exists()


def test_import_is_light() -> None:
    import subprocess

    code = (
        "import sys, zhiku.eval as e; e.format_table; e.load_dataset; e.ndcg_at_k;"
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_results_json_round_trip(report: Report, tmp_path: Path) -> None:
    from zhiku.eval.report import read_results_json

    report.methods[0].per_query[0].scores = {"hit@1": 1.0}
    report.methods[0].notes = ["a note"]
    write_results_json(report, tmp_path / "r.json")
    again = read_results_json(tmp_path / "r.json")
    assert again == report
