"""The CLI end to end on real files the test writes: every format, Chinese, English and mixed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.helpers.corpus import fast_config, write_corpus

from zhiku.cli.app import main
from zhiku.service import KnowledgeBase


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    KnowledgeBase.open(str(root), config=fast_config()).close()
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "docs")


def test_ingest_search_ask_list_delete(
    capsys: pytest.CaptureFixture[str], kb_dir: Path, corpus: Path
) -> None:
    code, out, err = run(capsys, "ingest", str(corpus), "--kb", str(kb_dir))
    assert code == 0, err
    assert "7 added" in out and "skipped 1 files of unsupported types" in out
    assert "built bm25" in out and "built dense" in out

    code, out, _ = run(capsys, "list", "--kb", str(kb_dir), "--json")
    docs = json.loads(out)
    assert {Path(d["path"]).name for d in docs} == {
        "农业保险办法.md",
        "员工手册_gbk.txt",
        "utf16.txt",
        "garden.md",
        "bike.html",
        "manual.pdf",
        "coffee.docx",
    }
    assert {d["format"] for d in docs} == {"markdown", "text", "html", "pdf", "docx"}

    # Chinese via jieba, GBK-encoded file decoded correctly.
    code, out, _ = run(
        capsys, "search", "离职员工账号注销", "--kb", str(kb_dir), "--method", "bm25", "--json"
    )
    hits = json.loads(out)
    assert Path(hits[0]["path"]).name == "员工手册_gbk.txt"
    assert "一个工作日内注销" in hits[0]["text"]
    h = hits[0]
    assert set(h) >= {"rank", "score", "method", "chunk_id", "path", "heading", "start", "end", "text"}
    # English, stemmed: "blinks" matches "blink"; the PDF text layer was read.
    code, out, _ = run(
        capsys, "search", "toner light blink", "--kb", str(kb_dir), "--method", "bm25", "--json"
    )
    assert Path(json.loads(out)[0]["path"]).name == "manual.pdf"
    # The script in the HTML page was not indexed.
    code, out, _ = run(capsys, "search", "hidden indexed", "--kb", str(kb_dir), "--method", "bm25", "--json")
    assert all(Path(h["path"]).name != "bike.html" for h in json.loads(out))
    # Hybrid is the default once dense is built.
    code, out, _ = run(capsys, "search", "农业保险合同 解除", "--kb", str(kb_dir), "--json")
    hits = json.loads(out)
    assert hits[0]["method"] == "hybrid" and Path(hits[0]["path"]).name == "农业保险办法.md"
    assert hits[0]["heading"] == "示例农业保险办法 > 第二章 农业保险合同"

    code, out, _ = run(capsys, "ask", "农业保险合同可以随便解除吗", "--kb", str(kb_dir), "--json")
    ans = json.loads(out)
    assert ans["found"] and "[1]" in ans["answer"] or "[2]" in ans["answer"]
    cited = ans["citations"][0]
    assert Path(cited["source"]).name == "农业保险办法.md"
    text = (corpus / "zh" / "农业保险办法.md").read_text(encoding="utf-8")
    assert text.strip()[cited["start"] : cited["end"]] == cited["quote"]  # offsets point at the exact place

    code, out, _ = run(capsys, "ask", "How much sunlight do tomatoes need?", "--kb", str(kb_dir))
    assert code == 0 and "six hours" in out and "Sources:" in out and "garden.md" in out

    code, out, _ = run(capsys, "ask", "量子纠缠通信的原理", "--kb", str(kb_dir), "--json")
    refusal = json.loads(out)
    # Found nothing, yet never empty-handed: the closest passages are listed and cited (issue 26).
    assert refusal["found"] is False and refusal["answer"].startswith("知识库中没有找到")
    assert "可能相关的内容：" in refusal["answer"] and 1 <= len(refusal["citations"]) <= 3

    code, out, _ = run(capsys, "delete", "员工手册_gbk.txt", "--kb", str(kb_dir))
    assert code == 0 and "deleted" in out
    for method in ("bm25", "dense", "hybrid"):
        code, out, _ = run(
            capsys, "search", "离职员工账号注销", "--kb", str(kb_dir), "--method", method, "--json"
        )
        assert all("员工手册" not in h["path"] for h in json.loads(out)), method


def test_reingest_unchanged_changed_and_removed(
    capsys: pytest.CaptureFixture[str], kb_dir: Path, corpus: Path
) -> None:
    assert run(capsys, "ingest", str(corpus), "--kb", str(kb_dir))[0] == 0
    code, out, _ = run(capsys, "ingest", str(corpus), "--kb", str(kb_dir))
    assert code == 0 and out.startswith("nothing changed: 7 documents already up to date")

    md = corpus / "en" / "garden.md"
    md.write_text(md.read_text(encoding="utf-8-sig").replace("six hours", "eight hours"), encoding="utf-8")
    (corpus / "en" / "bike.html").unlink()
    code, out, _ = run(capsys, "ingest", str(corpus), "--kb", str(kb_dir), "--json")
    report = json.loads(out)
    assert [Path(p).name for p in report["updated"]] == ["garden.md"]
    assert [Path(p).name for p in report["removed"]] == ["bike.html"]
    assert report["unchanged"] == 5

    code, out, _ = run(
        capsys, "search", "tomatoes sunlight hours", "--kb", str(kb_dir), "--json", "--method", "bm25"
    )
    texts = " ".join(h["text"] for h in json.loads(out))
    assert "eight hours" in texts and "six hours" not in texts
    code, out, _ = run(capsys, "search", "tyre pressure", "--kb", str(kb_dir), "--json", "--method", "bm25")
    assert all("bike.html" not in h["path"] for h in json.loads(out))


def test_status_reports_methods_and_staleness(
    capsys: pytest.CaptureFixture[str], kb_dir: Path, corpus: Path
) -> None:
    run(capsys, "ingest", str(corpus / "en"), "--kb", str(kb_dir))
    code, out, _ = run(capsys, "status", "--kb", str(kb_dir), "--json")
    st = json.loads(out)
    assert st["documents"] == 3 and st["language"] == "en" and st["default_method"] == "hybrid"
    assert {m["name"]: m["fresh"] for m in st["methods"]} == {
        "bm25": True,
        "dense": True,
        "minilm": True,  # an English KB builds the English-only model too
        "hybrid": True,
    }
    # Change the catalog behind the indexes' back (as an interrupted ingest would): status says stale,
    # and the next search rebuilds instead of answering from an index of another corpus.
    with KnowledgeBase.open(str(kb_dir)) as kb:
        kb.add_texts([("extra-note", "Extra", "Lighthouses use Fresnel lenses to focus light.")], build=False)
    code, out, _ = run(capsys, "status", "--kb", str(kb_dir))
    assert "STALE" in out
    # A read never builds (issue 29): the stale index answers from its last complete build and
    # says so; `zhiku build` brings it up to date.
    code, out, err = run(
        capsys, "search", "Fresnel lenses", "--kb", str(kb_dir), "--method", "bm25", "--json"
    )
    assert "extra-note" not in [h["path"] for h in json.loads(out)]
    assert "last complete build" in err
    code, out, _ = run(capsys, "status", "--kb", str(kb_dir), "--json")
    assert {m["name"]: m["fresh"] for m in json.loads(out)["methods"]}["bm25"] is False
    run(capsys, "build", "--kb", str(kb_dir))
    code, out, _ = run(capsys, "search", "Fresnel lenses", "--kb", str(kb_dir), "--method", "bm25", "--json")
    assert json.loads(out)[0]["path"] == "extra-note"
    code, out, _ = run(capsys, "status", "--kb", str(kb_dir), "--json")
    assert {m["name"]: m["fresh"] for m in json.loads(out)["methods"]}["bm25"] is True


def test_batch_search_writes_json_lines(
    capsys: pytest.CaptureFixture[str], kb_dir: Path, corpus: Path, tmp_path: Path
) -> None:
    run(capsys, "ingest", str(corpus), "--kb", str(kb_dir))
    qfile = tmp_path / "queries.txt"
    qfile.write_text("tomatoes sunlight\n\n农业保险合同\n", encoding="utf-8")
    code, out, _ = run(capsys, "search", "--batch", str(qfile), "--kb", str(kb_dir), "-k", "2", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [x["query"] for x in lines] == ["tomatoes sunlight", "农业保险合同"]
    assert all(1 <= len(x["hits"]) <= 2 for x in lines)
    assert Path(lines[1]["hits"][0]["path"]).name == "农业保险办法.md"


def test_chinese_kb_skips_english_only_dense_and_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    docs = tmp_path / "zh"
    docs.mkdir()
    (docs / "a.md").write_text("# 标题\n\n" + "农业保险合同的订立与解除。" * 20, encoding="utf-8")
    # By default a Chinese KB gets semantic retrieval: the default dense method is e5.
    code, out, _ = run(capsys, "ingest", str(docs), "--kb", "zhdefault")
    assert code == 0 and "built dense" in out
    code, out, _ = run(capsys, "search", "种庄稼的保险合同能不能随便退", "--kb", "zhdefault", "--json")
    assert json.loads(out)[0]["method"] == "hybrid"
    # A dense method with an English-only model is not built for a Chinese KB, and says why.
    from zhiku.config import KBConfig, MethodConfig

    minilm = KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "dense": MethodConfig(kind="dense"),
            "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "dense"]}),
        }
    )
    KnowledgeBase.open("zhkb", config=minilm).close()
    code, out, _ = run(capsys, "ingest", str(docs), "--kb", "zhkb")
    assert code == 0
    assert "skipped dense: the KB is mostly Chinese and the model all-MiniLM-L6-v2 only understands en" in out
    code, out, _ = run(capsys, "search", "农业保险", "--kb", "zhkb", "--json")
    assert json.loads(out)[0]["method"] == "bm25"  # the default falls back to bm25
    code, _, err = run(capsys, "search", "农业保险", "--kb", "zhkb", "--method", "dense")
    assert code == 5 and "method 'dense' is not built" in err and "zhiku build --method dense" in err


def test_identical_files_at_two_paths_are_one_document(
    capsys: pytest.CaptureFixture[str], kb_dir: Path, tmp_path: Path
) -> None:
    """Issue 29: one document per content (was: two documents answering twice)."""
    docs = tmp_path / "dups"
    (docs / "a").mkdir(parents=True)
    (docs / "b").mkdir()
    for sub in ("a", "b"):
        (docs / sub / "same.txt").write_text(
            "Lighthouses use Fresnel lenses to focus light.", encoding="utf-8"
        )
    code, out, _ = run(capsys, "ingest", str(docs), "--kb", str(kb_dir))
    assert code == 0 and "1 added" in out and "1 duplicates" in out
    assert f"{docs / 'b' / 'same.txt'} is the same file as {docs / 'a' / 'same.txt'}" in out
    code, out, _ = run(capsys, "search", "Fresnel lenses", "--kb", str(kb_dir), "--method", "bm25", "--json")
    assert [Path(h["path"]).parent.name for h in json.loads(out)] == ["a"]
    # A changed file still replaces its old version.
    (docs / "a" / "same.txt").write_text("Lighthouses now use LED lamps.", encoding="utf-8")
    code, out, _ = run(capsys, "ingest", str(docs / "a"), "--kb", str(kb_dir))
    assert code == 0 and "1 updated" in out


def test_a_search_from_the_command_line_prints_everything_before_its_quick_exit(tmp_path: Path) -> None:
    # `zhiku search` ends with os._exit once its output is flushed (app.main's quick_exit): every
    # line must still arrive through a pipe, with the command's exit code, and an error stays one line.
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# 灯塔\n\n灯塔使用菲涅尔透镜聚光，夜里为船只指引方向。\n", encoding="utf-8")
    env = {**os.environ, "ZHIKU_HOME": str(tmp_path / "home")}
    zhiku = [sys.executable, "-m", "zhiku"]
    done = subprocess.run(
        [*zhiku, "ingest", str(docs), "--kb", "k", "--methods", "bm25"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    found = subprocess.run(
        [*zhiku, "search", "菲涅尔透镜", "--kb", "k", "--json"], env=env, capture_output=True, text=True
    )
    assert found.returncode == 0 and json.loads(found.stdout)[0]["chunk_id"]
    missing = subprocess.run(
        [*zhiku, "search", "灯塔", "--kb", "nope"], env=env, capture_output=True, text=True
    )
    assert (
        missing.returncode == 3 and missing.stderr.count("\n") == 1 and missing.stderr.startswith("error: ")
    )
