"""The runner's parts: evaluate() on any retriever, judges, method planning, answers, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhiku.config import KBConfig
from zhiku.errors import ConfigError, UnknownNameError, UsageError
from zhiku.eval import evaluate
from zhiku.eval.answers import strip_citations
from zhiku.eval.corpus_kb import corpus_records, plan_methods
from zhiku.eval.datasets import Dataset, Passage
from zhiku.eval.judges import EvidenceJudge
from zhiku.eval.runner import KBRetriever
from zhiku.service import KnowledgeBase
from zhiku.types import Chunk, DocumentInfo, Hit

CORPUS = {
    "p1": Passage("p1", "The Nile is the longest river in Africa.", "Nile"),
    "p2": Passage("p2", "Mount Everest is the highest mountain on Earth.", "Everest"),
    "p3": Passage("p3", "The Sahara is the largest hot desert.", "Sahara"),
}
DS = Dataset(
    "toy",
    CORPUS,
    {"q1": "longest river in Africa", "q2": "highest mountain", "q3": "largest hot desert"},
    {"q1": {"p1": 1}, "q2": {"p2": 1}, "q3": {"p3": 1}},
    format="squad",
)


class Oracle:
    """Returns a fixed ranking per query: hits carry passage ids as chunk ids and no document."""

    def __init__(self, rankings: dict[str, list[str]]) -> None:
        self.rankings = rankings
        self.calls = 0

    def search(self, query: str, k: int) -> list[Hit]:
        self.calls += 1
        return [Hit(pid, 1.0 / (i + 1), "oracle") for i, pid in enumerate(self.rankings[query][:k])]


class Batched(Oracle):
    def __init__(self, rankings: dict[str, list[str]]) -> None:
        super().__init__(rankings)
        self.batches = 0

    def search_many(self, queries: list[str], k: int) -> list[list[Hit]]:
        self.batches += 1
        return [[Hit(p, 1.0, "b") for p in self.rankings[q][:k]] for q in queries]


RANKS = {
    "longest river in Africa": ["p1", "p2"],
    "highest mountain": ["p3", "p2"],
    "largest hot desert": ["p1"],
}


def test_evaluate_any_retriever() -> None:
    report = evaluate(Oracle(RANKS), DS, k=3, name="oracle")
    (m,) = report.methods
    assert m.method == "oracle" and report.k == 3
    assert m.metrics["hit@1"] == pytest.approx(1 / 3) and m.metrics["hit@3"] == pytest.approx(2 / 3)
    assert m.metrics["mrr@3"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert [q.first_rank for q in m.per_query] == [1, 2, None]
    assert m.per_query[2].snippets == ["The Nile is the longest river in Africa."]
    assert m.per_query[2].gold_snippet == "The Sahara is the largest hot desert."
    assert m.latency_ms_p95 >= m.latency_ms_p50 >= 0 and m.queries_per_second > 0


def test_batched_retrievers_are_timed_on_a_sample() -> None:
    r = Batched(RANKS)
    report = evaluate(r, DS, k=3, latency_sample=2)
    assert r.batches == 1 and r.calls == 1 + 2  # one warm-up, two timed single searches
    assert report.methods[0].metrics["hit@1"] == pytest.approx(1 / 3)


def test_evaluate_a_kb_method_and_a_zhiku_qa_set(tmp_path: Path) -> None:
    with KnowledgeBase.open(str(tmp_path / "kb")) as kb:
        kb.add_texts([(p.id, p.title, p.text) for p in CORPUS.values()], build=False)
        kb.build(names=["bm25"])
        m = evaluate(KBRetriever(kb, "bm25"), DS).methods[0]
        assert m.method == "bm25" and m.metrics["hit@1"] == 1.0 and m.metrics["ndcg@10"] == 1.0

        qa = Dataset(
            "qa",
            {},
            {"a": "highest mountain", "b": "desert"},
            {},
            evidence={"a": ["highest  mountain"], "b": []},
            doc_gold={"a": [], "b": ["p3"]},
            format="zhiku-qa",
        )
        m = evaluate(KBRetriever(kb, "bm25"), qa).methods[0]  # the KB is scanned: full relevant sets
        assert m.metrics["hit@1"] == 1.0 and m.metrics["recall@10"] == 1.0
        assert m.per_query[1].relevant == ["p3"]  # judged by document


def test_partial_judge_reports_hit_and_mrr_only() -> None:
    doc = DocumentInfo("d", "laws/保险法.md", "保险法", "markdown", "h", 10, 1, 0.0)
    hit = Hit("c1", 1.0, "x", chunk=Chunk("c1", "d", 0, "投保人 可以解除合同", 0, 10), doc=doc)
    qa = Dataset(
        "qa",
        {},
        {"a": "解除"},
        {},
        evidence={"a": ["投保人可以解除"]},
        doc_gold={"a": ["保险法"]},
        format="zhiku-qa",
    )

    class One:
        def search(self, query: str, k: int) -> list[Hit]:
            return [hit]

    judge = EvidenceJudge(qa)
    assert judge.partial and judge.judge("a", [hit]) == (["c1"], {"c1": 1})
    m = evaluate(One(), qa, judge=judge).methods[0]
    assert set(m.metrics) == {"hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"}


def test_plan_methods() -> None:
    cfg = plan_methods(KBConfig(), ["bm25", "bm25+dense", "dense"])
    fused = cfg.methods["bm25+dense"]
    assert fused.kind == "hybrid" and fused.options == {"of": ["bm25", "dense"]}
    with pytest.raises(UnknownNameError, match="unknown method 'nope'") as e:
        plan_methods(KBConfig(), ["nope"])
    assert "bm25+dense" in (e.value.hint or "")
    bare = KBConfig(methods={})
    assert plan_methods(bare, ["bm25"]).methods["bm25"].kind == "bm25"  # a registered kind is added
    with pytest.raises(UsageError, match="not configured in this knowledge base"):
        plan_methods(bare, ["bm25"], allow_new_indexes=False)
    with pytest.raises(UsageError, match="not a fusion"):
        plan_methods(KBConfig(), ["bm25++dense"])


def test_identical_passages_are_stored_once() -> None:
    corpus = {**CORPUS, "p4": Passage("p4", CORPUS["p1"].text, "Another title"), "p5": Passage("p5", "", "")}
    ds = Dataset("d", corpus, {"q": "x"}, {"q": {"p4": 1}})
    records, aliases = corpus_records(ds)
    assert [r[0] for r in records] == ["p1", "p2", "p3"] and aliases == {"p1": ["p1", "p4"]}


def test_strip_citations() -> None:
    assert strip_citations("投保人可以解除合同。[1]第二句。[2]") == "投保人可以解除合同。第二句。"
    assert strip_citations("Sicily, Italy [1] and more [12]") == "Sicily, Italy and more"


def test_overrides() -> None:
    from zhiku.cli.eval import apply_overrides, parse_value

    assert parse_value("1000") == 1000 and parse_value("true") is True and parse_value("hashing") == "hashing"
    assert parse_value('["bm25", "dense"]') == ["bm25", "dense"]
    cfg = apply_overrides(
        KBConfig(), ["chunking.size=800", "methods.dense.options.embedder=hashing", "methods.tfidf.kind=bm25"]
    )
    assert cfg.chunking.size == 800 and cfg.methods["dense"].options["embedder"] == "hashing"
    assert cfg.methods["tfidf"].kind == "bm25"
    with pytest.raises(ConfigError, match="chunking.size"):
        apply_overrides(KBConfig(), ["chunking.size=-1"])
    with pytest.raises(ConfigError, match="is a value, not a table"):
        apply_overrides(KBConfig(), ["chunking.size.x=1"])
