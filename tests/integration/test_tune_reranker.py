"""`zhiku tune reranker`: a tiny randomly initialised cross-encoder, saved to tmp, fine-tuned through
the real code (BinaryCrossEntropyLoss on mined hard negatives), validated against the KB's current
setting, and enabled as the KB's [rerank] only when it wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.law_corpus import law_documents, tune_config
from tests.helpers.tiny_cross_encoder import build_tiny_cross_encoder

from zhiku.cli.app import main
from zhiku.config import KBConfig
from zhiku.service import KnowledgeBase
from zhiku.tune import questions as tq


@pytest.fixture()
def kb_and_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    root = tmp_path / "kb"
    docs = law_documents(n_docs=8, articles=4)
    # Ten first-stage hits reranked per question (30 by default) keep the test quick.
    config = tune_config().updated(rerank={"top_n": 10})
    with KnowledgeBase.open(str(root), config=config) as kb:
        kb.add_texts(docs)
        kb.build(["bm25"])
    assert main(["tune", "questions", "--kb", str(root), "--json"]) == 0
    capsys.readouterr()
    with KnowledgeBase.open(str(root), create=False) as kb:
        texts = [q.question for q in tq.read_jsonl(root / "tune" / "questions.jsonl")]
        texts += [c.text for c in tq.source_chunks(kb)]
    model = build_tiny_cross_encoder(tmp_path / "tiny-ce", texts)
    return root, model


def _tune(root: Path, model: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    args = ["tune", "reranker", "--kb", str(root), "--model", str(model), "--max-validation", "40"]
    assert main([*args, "--max-train", "48", "--max-length", "128", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow  # two epochs and three validation passes: about a minute on a busy machine
def test_reranker_finetune_saves_loads_reports_and_follows_the_decision(
    kb_and_model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, model = kb_and_model
    with KnowledgeBase.open(str(root), create=False) as kb:
        default = kb.default_method()
    info = _tune(root, model, capsys, "--epochs", "2", "--lr", "1e-3")
    man = info["manifest"]
    folder = Path(info["model"])
    assert folder == (root / "models" / "tiny-ce-tuned" / "model").resolve()
    assert man["steps"] > 0 and man["negatives"] > 0 and man["method"] == default
    # The best epoch on validation is what was saved: never worse than the model as given.
    assert man["validation_mrr@10"]["after"] >= man["validation_mrr@10"]["before"]
    assert len(man["history"]) == man["epochs_run"] + 1
    assert man["rerank"] == {"kind": "cross-encoder", "options": {"model": str(folder)}}
    # Three rows: the first stage alone, with the model as given, with the tuned one.
    method = man["method"]
    assert list(info["validation"]) == [method, f"{method}>tiny-ce", f"{method}>tiny-ce-tuned"]
    out = Path(info["out"]) / "validation"
    for f in ("results.json", "report.md", "chart.png"):
        assert (out / f).is_file()
    assert "[rerank]" in (out / "report.md").read_text(encoding="utf-8")
    # The saved model loads through the real reranker code, and the KB searches with it.
    with KnowledgeBase.open(str(root), create=False) as kb:
        hits = kb.search("保险 理赔", 3, rerank=f"cross-encoder:{folder}")
        assert hits and all(h.extra.get("reranker") == f"cross-encoder:{folder}" for h in hits)
    cfg = KBConfig.load(root / "zhiku.toml")
    # The KB's [rerank] follows the paired test, whichever way it went.
    assert info["enabled"] == man["decision"]["significant"]
    assert (cfg.rerank.kind == "cross-encoder" and cfg.rerank.options["model"] == str(folder)) == info[
        "enabled"
    ]
    saved = json.loads((root / "models" / "tiny-ce-tuned" / "manifest.json").read_text(encoding="utf-8"))
    assert saved["decision"] == man["decision"]


def test_a_tuned_reranker_that_loses_is_not_enabled(
    kb_and_model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """lr 0 leaves the random tiny model as it is: reordering BM25's hits at random loses to BM25
    alone, so the reranker is kept on disk, the KB's [rerank] stays off, and the report says why."""
    root, model = kb_and_model
    info = _tune(root, model, capsys, "--epochs", "1", "--lr", "0")
    verdict = info["manifest"]["decision"]
    assert not info["enabled"] and not verdict["significant"]
    assert verdict["incumbent"] == info["manifest"]["method"]  # reranking was off: the method alone
    assert verdict["mean_challenger"] < verdict["mean_incumbent"] and "does not beat" in verdict["why"]
    assert KBConfig.load(root / "zhiku.toml").rerank.kind is None
    out = Path(info["out"]) / "validation"
    assert {"results.json", "report.md", "chart.png"} <= {p.name for p in out.iterdir()}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "not enabled" in report and "does not beat" in report
    # Kept, not enabled: it loads through the real reranker code for whoever asks for it.
    folder = Path(info["model"])
    with KnowledgeBase.open(str(root), create=False) as kb:
        assert kb.search("保险 理赔", 3, rerank=f"cross-encoder:{folder}")
        assert kb.search("保险 理赔", 3)[0].extra.get("reranker") is None  # the KB's search: no rerank


def _report(tuned_rr: list[float], incumbent_rr: list[float]) -> Any:
    from zhiku.eval.report import MethodResult, QueryResult, Report

    def row(name: str, rr: list[float]) -> MethodResult:
        per = [
            QueryResult(f"q{i}", "?", [], [], [], None, bool(v), scores={"mrr@10": v})
            for i, v in enumerate(rr)
        ]
        return MethodResult(name, {"mrr@10": sum(rr) / len(rr)}, 0.0, 0.0, 0.0, 0, per)

    return Report("validation", [row("hybrid", incumbent_rr), row("hybrid>tuned", tuned_rr)], k=10)


def test_the_kb_reranker_switches_only_on_a_win_keeping_its_other_settings(tmp_path: Path) -> None:
    """The decision on validation rows, through the real paired test and the real zhiku.toml: a win
    makes the tuned folder the KB's [rerank] (top_n, threshold and cross-encoder options kept, as
    the rows were scored with them); a loss, or a gain within noise, leaves [rerank] as it was."""
    from zhiku.tune.runs import adopt_reranker

    root = tmp_path / "kb"
    rerank = {"kind": "cross-encoder", "top_n": 12, "options": {"model": "/m/base", "max_length": 128}}
    with KnowledgeBase.open(str(root), config=tune_config().updated(rerank=rerank)) as kb:
        folder = kb.layout.models / "base-tuned" / "model"
        within_noise = adopt_reranker(
            kb, _report([1.0] * 2 + [0.5] * 38, [0.5] * 40), "hybrid>tuned", "hybrid", folder
        )
        assert not within_noise.significant and "within noise" in within_noise.why
        loses = adopt_reranker(kb, _report([0.25] * 40, [0.5] * 40), "hybrid>tuned", "hybrid", folder)
        assert not loses.significant and "does not beat" in loses.why
        assert KBConfig.load(root / "zhiku.toml").rerank.options["model"] == "/m/base"
        wins = adopt_reranker(
            kb, _report([1.0] * 30 + [0.5] * 10, [0.5] * 40), "hybrid>tuned", "hybrid", folder
        )
        assert wins.significant
    cfg = KBConfig.load(root / "zhiku.toml").rerank
    assert cfg.kind == "cross-encoder" and cfg.top_n == 12
    assert cfg.options == {"model": str(folder), "max_length": 128}
