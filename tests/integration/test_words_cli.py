"""`zhiku words …`, `zhiku build --retrain`, `zhiku search --expand` and L2 output, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.word_corpus import FAST_TRAINING, TOPICS, write_topic_files

from zhiku.cli.app import main
from zhiku.config import KBConfig, MethodConfig
from zhiku.service import KnowledgeBase


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A KB with bm25 and a fast w2v-sg, trained by `zhiku build --method w2v-sg` (options in zhiku.toml)."""
    tmp = tmp_path_factory.mktemp("words")
    root = tmp / "kb"
    config = KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "w2v-sg": MethodConfig(kind="w2v-sg", options=FAST_TRAINING),
            "w2v-l2": MethodConfig(kind="w2v-cbow", options={**FAST_TRAINING, "metric": "l2"}),
        }
    )
    KnowledgeBase.open(str(root), config=config).close()
    assert (
        main(["ingest", str(write_topic_files(tmp / "docs", per_topic=3, sentences=12)), "--kb", str(root)])
        == 0
    )
    assert main(["build", "--method", "w2v-sg", "--method", "w2v-l2", "--kb", str(root)]) == 0
    return str(root)


def test_similar_lists_words_of_the_same_topic(capsys: pytest.CaptureFixture[str], kb_dir: str) -> None:
    code, out, _ = run(capsys, "words", "similar", "保险", "-n", "4", "--kb", kb_dir, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["method"] == "w2v-sg" and len(data["similar"]) == 4
    insurance = set(TOPICS["insurance"][1])
    assert sum(s["word"] in insurance for s in data["similar"]) >= 3
    code, out, _ = run(capsys, "words", "similar", "保险", "--kb", kb_dir)
    assert "nearest to '保险' in w2v-sg:" in out and len(out.splitlines()) == 11


def test_analogy_vector_compare(capsys: pytest.CaptureFixture[str], kb_dir: str) -> None:
    code, out, _ = run(capsys, "words", "analogy", "保险", "cat", "kitten", "--kb", kb_dir, "--json")
    assert code == 0
    answers = [a["word"] for a in json.loads(out)["answers"]]
    assert len(answers) == 5 and not {"保险", "cat", "kitten"} & set(answers)
    code, out, _ = run(
        capsys, "words", "vector", "cats", "--kb", kb_dir, "--json"
    )  # stemmed like the corpus: cat
    data = json.loads(out)
    assert code == 0 and data["word"] == "cat" and data["dim"] == 32 and len(data["vector"]) == 32
    code, out, _ = run(capsys, "words", "vector", "保险", "--kb", kb_dir)
    assert "32 dimensions" in out
    _, same, _ = run(capsys, "words", "compare", "保险", "理赔", "--kb", kb_dir, "--json")
    _, other, _ = run(capsys, "words", "compare", "保险", "kitten", "--kb", kb_dir, "--json")
    assert json.loads(same)["similarity"] > json.loads(other)["similarity"]


def test_unknown_words_get_the_closest_spellings(capsys: pytest.CaptureFixture[str], kb_dir: str) -> None:
    code, _, err = run(capsys, "words", "similar", "kitte", "--kb", kb_dir)
    assert code == 3 and "not in the vocabulary of w2v-sg" in err and "kitten" in err
    code, _, err = run(capsys, "words", "similar", "保险理赔", "--kb", kb_dir)  # jieba splits it
    assert code == 3 and "保险 | 理赔" in err
    code, _, err = run(capsys, "words", "similar", "保险", "--kb", kb_dir, "--method", "bm25")
    assert code == 2 and "has no word vectors" in err
    assert "Traceback" not in err


def test_plot_writes_a_png(capsys: pytest.CaptureFixture[str], kb_dir: str, tmp_path: Path) -> None:
    out_png = tmp_path / "map.png"
    code, out, err = run(
        capsys, "words", "plot", "保险", "cat", "--out", str(out_png), "-n", "3", "--kb", kb_dir, "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["words"][:2] == ["保险", "cat"] and len(data["words"]) == 8
    from zhiku.cli.word_explorer import cjk_font

    assert data["missing_glyphs"] == (cjk_font() is None)  # no CJK font installed: said, not hidden


def test_no_word2vec_says_how_to_train_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "plain"
    KnowledgeBase.open(str(root), config=KBConfig(methods={"bm25": MethodConfig(kind="bm25")})).close()
    code, _, err = run(capsys, "words", "similar", "保险", "--kb", str(root))
    assert code == 5 and "zhiku build --kb plain --method w2v-sg" in err


def test_retrain_expand_and_l2_output(capsys: pytest.CaptureFixture[str], kb_dir: str) -> None:
    models = Path(kb_dir) / "models" / "w2v-sg" / "manifest.json"
    before = json.loads(models.read_text(encoding="utf-8"))["model_id"]
    code, out, _ = run(capsys, "build", "--method", "w2v-sg", "--kb", kb_dir)
    assert code == 0 and "w2v-sg is up to date" in out
    code, out, _ = run(capsys, "build", "--method", "w2v-sg", "--retrain", "--kb", kb_dir)
    assert code == 0 and "built w2v-sg" in out
    assert json.loads(models.read_text(encoding="utf-8"))["model_id"] != before

    code, out, _ = run(capsys, "search", "保险", "--expand", "--kb", kb_dir, "--json")
    hits = json.loads(out)
    assert code == 0 and hits and all(h["method"] == "bm25-expand" for h in hits)
    code, _, err = run(capsys, "search", "保险", "--expand", "-m", "w2v-sg", "--kb", kb_dir)
    assert code == 2 and "--expand" in err

    code, out, _ = run(capsys, "search", "保险 理赔", "-m", "w2v-l2", "-k", "3", "--kb", kb_dir)
    assert code == 0 and out.count("[L2 ") == 3
    code, out, _ = run(capsys, "status", "--kb", kb_dir)
    assert "w2v-sg" in out and "STALE" not in out
