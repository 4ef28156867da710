"""zhiku tune: offline questions, the split by document, the adapter and its method, the default
decision and the router, through the real KB and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.law_corpus import law_documents, tune_config

from zhiku.cli.app import main
from zhiku.config import KBConfig
from zhiku.eval.datasets import judge_zhiku_qa, load_dataset, normalize_evidence
from zhiku.retrieve.adapter_model import Adapter
from zhiku.service import KnowledgeBase
from zhiku.tune import questions as tq
from zhiku.tune.compare import paired_bootstrap, sign_test


@pytest.fixture(scope="module")
def kb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tune") / "laws"
    with KnowledgeBase.open(str(root), config=tune_config()) as kb:
        kb.add_texts(law_documents())
    return root


def test_offline_questions_are_honest_and_split_by_document(
    kb_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "questions", "--kb", str(kb_root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    out = Path(info["files"]["all"])
    questions = tq.read_jsonl(out)
    assert info["kept"] == len(questions) > 50
    assert set(info["by_generator"]) == {"offline:ict", "offline:keywords", "offline:article"}
    with KnowledgeBase.open(str(kb_root), create=False) as kb:
        chunks = {c.id: c for c in tq.source_chunks(kb)}
    for q in questions:
        chunk = chunks[q.chunk]
        # The evidence is in the source chunk, so `zhiku eval` counts the source as relevant ...
        assert judge_zhiku_qa(chunk.text, chunk.doc, q.evidence, [q.doc])
        if q.kind == "ict":
            # ... and an inverse-cloze question is never its own evidence.
            assert normalize_evidence(q.question) not in normalize_evidence(q.evidence[0])
            assert normalize_evidence(q.evidence[0]) not in normalize_evidence(q.question)
    train, val = tq.read_jsonl(Path(info["files"]["train"])), tq.read_jsonl(Path(info["files"]["validation"]))
    assert train and val and len(train) + len(val) == len(questions)
    assert not {q.doc for q in train} & {q.doc for q in val}
    # zhiku eval reads the file as is.
    ds = load_dataset(Path(info["files"]["validation"]))
    assert ds.format == "zhiku-qa" and len(ds.queries) == len(val)
    assert (
        main(
            [
                "eval",
                info["files"]["validation"],
                "--kb",
                str(kb_root),
                "--methods",
                "bm25",
                "--out",
                str(kb_root.parent / "ev"),
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["methods"]["bm25"]["hit@10"] > 0.5


def test_filters_drop_duplicates_and_ambiguous_questions(kb_root: Path) -> None:
    with KnowledgeBase.open(str(kb_root), create=False) as kb:
        chunks = tq.source_chunks(kb)
        c = chunks[0]
        same = [
            tq.Question(f"x{i}", text, ["x"], c.doc, c.id, "offline:test", "t")
            for i, text in enumerate(
                ["保险理赔的期限是多久？", "保险理赔的期限是多久?", "保险 理赔的期限是多久"]
            )
        ]
        stats = tq.FilterStats()
        assert len(tq.dedupe(same, stats)) == 1 and stats.duplicates == 2
        # "应当" is in every chunk: many chunks tie, the question is dropped as ambiguous.
        vague = tq.Question("v", "依照本法", ["x"], c.doc, c.id, "offline:test", "t")
        stats = tq.FilterStats()
        assert tq.answerable(kb, [vague], stats) == [] and stats.ambiguous + stats.not_found == 1


def test_split_never_puts_a_document_on_both_sides() -> None:
    qs = [
        tq.Question(f"q{i}", f"问题{i}", ["e"], f"doc{i % 7}.md", f"c{i}", "offline:ict", "ict")
        for i in range(70)
    ]
    for seed in range(5):
        train, val = tq.split_by_document(qs, 0.3, seed)
        assert train and val and not {q.doc for q in train} & {q.doc for q in val}


def test_adapter_roundtrip_and_identity(tmp_path: Path) -> None:
    for kind in ("linear", "residual"):
        a = Adapter.identity(kind, 8)  # type: ignore[arg-type]
        q = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
        assert np.allclose(a.apply(q), q)
        a.weights[next(iter(a.weights))] += 0.5
        a.save(tmp_path / kind)
        b = Adapter.load(tmp_path / kind)
        assert np.allclose(a.apply(q), b.apply(q))


def test_bootstrap_and_sign_test() -> None:
    a = [0.0] * 50 + [1.0] * 50
    assert paired_bootstrap(a, a)[0] == 1.0  # no difference: never significant
    better = [1.0] * 100
    assert paired_bootstrap(a, better)[0] < 0.01
    assert sign_test(a, better)[:3] == (50, 0, 50)


def test_adapter_trains_becomes_a_method_and_is_validated(
    kb_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "adapter", "--kb", str(kb_root), "--base", "dense", "--epochs", "5", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    man = info["manifest"]
    assert man["base"] == "dense" and man["data_hash"] and "decision" in man
    assert man["validation_mrr@10"]["after"] >= man["validation_mrr@10"]["before"]
    folder = kb_root / "models" / "dense-tuned"
    assert {"W.npy", "b.npy", "adapter.json", "manifest.json"} <= {p.name for p in folder.iterdir()}
    assert not list(folder.glob("*.pkl"))
    cfg = KBConfig.load(kb_root / "zhiku.toml")
    assert cfg.methods["dense-tuned"].kind == "adapted"
    # The default follows the paired test, whichever way it went.
    assert (cfg.default_method == "dense-tuned") == man["decision"]["significant"]
    for f in ("results.json", "report.md"):
        assert (Path(info["out"]) / "validation" / f).is_file()
    with KnowledgeBase.open(str(kb_root), create=False) as kb:
        hits = kb.search("保险 理赔", 5, "dense-tuned")
        assert hits and all(h.method == "dense-tuned" for h in hits)
        assert {h.chunk_id for h in hits} <= {c.id for c in tq.source_chunks(kb)}


def test_a_tuned_method_that_loses_is_not_made_default(
    kb_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An adapter that scrambles the query space loses on validation: kept, never made default."""
    from zhiku.config import MethodConfig
    from zhiku.eval.report import Report
    from zhiku.tune.compare import compare, evaluate_methods, save_config

    with KnowledgeBase.open(str(kb_root), create=False) as kb:
        bad = Adapter.identity("linear", 128)
        rng = np.random.default_rng(1)
        bad.weights["W"] = (rng.standard_normal((128, 128)) * 3).astype(np.float32)
        bad.save(kb.layout.models / "dense-bad")
        save_config(
            kb,
            method=("dense-bad", MethodConfig(kind="adapted", options={"base": "dense"})),
            default_method="dense",
        )
        _, val = tq.split_paths(kb.layout.root / "tune" / "questions.jsonl")
        report: Report = evaluate_methods(kb, val, ["dense", "dense-bad"])
        verdict = compare(report, "dense-bad", "dense")
        assert not verdict.significant and "does not beat" in verdict.why
        assert verdict.mean_challenger < verdict.mean_incumbent
    assert KBConfig.load(kb_root / "zhiku.toml").default_method == "dense"


def test_route_chooses_on_validation_and_records_evidence(
    kb_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "route", "--kb", str(kb_root), "--methods", "bm25,dense", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    cfg = KBConfig.load(kb_root / "zhiku.toml")
    assert cfg.route is not None and cfg.route["chosen"] == info["chosen"]
    assert "bootstrap" in cfg.route["test"] and cfg.route["scores"]
    # hashing vectors cannot beat BM25 on this corpus: whatever is chosen is not worse than bm25
    assert cfg.route["scores"][cfg.route["best candidate"]] >= cfg.route["scores"]["bm25"]
    assert main(["status", "--kb", str(kb_root)]) == 0
    assert "route: " in capsys.readouterr().out


def test_route_on_offline_questions_warns_that_they_favour_bm25(
    kb_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The KB's questions are offline pseudo-questions (the fixture's `tune questions`): the choice is
    # still made, but the output, the report and zhiku.toml say it should be checked on real questions.
    if not (kb_root / "tune" / "questions.jsonl").exists():
        assert main(["tune", "questions", "--kb", str(kb_root)]) == 0
    capsys.readouterr()
    assert main(["tune", "route", "--kb", str(kb_root), "--methods", "bm25,dense"]) == 0
    out = capsys.readouterr().out
    assert "offline pseudo-question" in out and "favours lexical methods" in out
    route = KBConfig.load(kb_root / "zhiku.toml").route
    assert route is not None and "offline pseudo-question" in route["warning"]
    report = (kb_root / "tune" / "route" / "report.md").read_text(encoding="utf-8")
    assert "offline pseudo-question" in report
