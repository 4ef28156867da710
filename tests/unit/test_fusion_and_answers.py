from __future__ import annotations

from pathlib import Path

from zhiku.generate.answer import resolve_citations
from zhiku.generate.base import ContextBlock
from zhiku.generate.extractive import NOT_FOUND, ExtractiveGenerator
from zhiku.retrieve.fusion import reciprocal_rank_fusion
from zhiku.types import Hit


def hits(method: str, *ids: str) -> list[Hit]:
    return [Hit(i, 1.0 / (n + 1), method) for n, i in enumerate(ids)]


def test_rrf_scores_and_order() -> None:
    fused = reciprocal_rank_fusion([hits("a", "x", "y", "z"), hits("b", "y", "w")], k=3, method="h")
    assert [h.chunk_id for h in fused] == ["y", "x", "w"]
    assert abs(fused[0].score - (1 / 62 + 1 / 61)) < 1e-12
    assert fused[0].extra["ranks"] == {"a": 2, "b": 1}


def test_rrf_weights() -> None:
    fused = reciprocal_rank_fusion([hits("a", "x"), hits("b", "y")], k=2, method="h", weights=[1.0, 2.0])
    assert [h.chunk_id for h in fused] == ["y", "x"]


def block(n: int, text: str, title: str = "Doc") -> ContextBlock:
    return ContextBlock(n, f"c{n}", f"d{n}", text, f"/docs/{n}.md", title, "", 0, len(text), 1.0)


def test_extractive_quotes_the_answering_sentence_with_a_citation() -> None:
    gen = ExtractiveGenerator()
    ctx = [
        block(1, "Roses like sun. Prune roses in late winter before growth starts."),
        block(2, "Tomatoes need six hours of sunlight."),
    ]
    text = "".join(gen.generate("When should I prune roses?", ctx))
    assert "Prune roses in late winter" in text and "[1]" in text and "[2]" not in text


def test_extractive_says_not_found_instead_of_inventing() -> None:
    gen = ExtractiveGenerator()
    ctx = [block(1, "Tomatoes need six hours of sunlight.")]
    # Refusing, it still lists the closest passage with its citation: never empty-handed.
    en = "".join(gen.generate("How do quantum computers factor integers?", ctx))
    assert en == NOT_FOUND["en"] + "\nPossibly related:\n- Doc: Tomatoes need six hours of sunlight. [1]"
    assert gen.last_refused
    zh = "".join(gen.generate("量子计算机如何分解整数？", ctx))
    assert zh.startswith(NOT_FOUND["zh"] + "\n可能相关的内容：\n- Doc：Tomatoes") and zh.endswith("[1]")


def test_invalid_citations_are_removed_and_reported() -> None:
    text, cites, invalid = resolve_citations("A [1] B [7] C [1]", [block(1, "x")])
    assert text == "A [1] B  C [1]" and [c.n for c in cites] == [1] and invalid == [7]


def test_score_fusion_keeps_how_much_better_a_hit_is() -> None:
    from zhiku.retrieve.fusion import score_fusion

    sharp = [Hit("a", 30.0, "bm25"), Hit("b", 3.0, "bm25"), Hit("c", 2.9, "bm25")]
    flat = [Hit("c", 0.91, "e5"), Hit("b", 0.90, "e5"), Hit("a", 0.70, "e5")]
    fused = score_fusion([sharp, flat], 3, "h")
    assert [h.chunk_id for h in fused] == ["a", "c", "b"]  # bm25's clear winner survives
    assert fused[0].extra["ranks"] == {"bm25": 1, "e5": 3}
    # weights move the balance: with e5 counting three times, its first hit wins
    assert score_fusion([sharp, flat], 1, "h", weights=[1, 3])[0].chunk_id == "c"
    z = score_fusion([sharp, flat], 3, "h", normalize="zscore")
    assert [h.chunk_id for h in z] == ["c", "a", "b"]  # z-scores: e5's tight band counts as much
    assert score_fusion([[], flat], 2, "h")[0].chunk_id == "c"  # an empty list adds nothing


def test_a_default_search_does_not_wait_for_an_unbuilt_embedding_index(tmp_path: Path) -> None:
    from zhiku.config import KBConfig, MethodConfig
    from zhiku.service import KnowledgeBase

    cfg = KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "dense": MethodConfig(kind="dense", enabled=True, options={"embedder": "hashing", "dim": 64}),
            "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "dense"], "weights": [1.0, 2.0]}),
        }
    )
    with KnowledgeBase.open(str(tmp_path / "kb"), config=cfg) as kb:
        kb.add_texts([("a.md", "a", "保险公司应当及时赔付保险金。"), ("b.md", "b", "劳动者享有年休假。")])
        assert kb.search("保险金", 2)[0].method == "hybrid" and kb.notes == []
        # An ingest whose embedding step did not run (interrupted, or still going in another process):
        kb.add_texts([("c.md", "c", "灯塔看守员记录航船。")], build=False)
        kb.build(["bm25"])  # the writer's BM25 step; the embedding step has not run
        hits = kb.search("灯塔 航船", 3)
        # dense answers from its last complete build (issue 29: a read never builds) and says so
        assert "c.md" in [h.doc.source for h in hits if h.doc] and hits[0].method == "hybrid"
        assert kb.parts_used == ["bm25", "dense"]
        assert kb.notes and "dense" in kb.notes[0] and "zhiku build" in kb.notes[0]
        assert not kb.method_status("dense").fresh  # it was not rebuilt behind the user's back
        # with no dense index at all (its first build still running), the fusion answers with BM25
        import shutil

        shutil.rmtree(kb.layout.index_dir("dense").resolve())
        kb.layout.index_dir("dense").unlink()
        hits = kb.search("灯塔 航船", 2)
        assert hits[0].doc is not None and hits[0].doc.source == "c.md" and hits[0].method == "bm25"
        assert kb.parts_used == ["bm25"] and "dense is not ready" in kb.notes[0]
        kb.build()
        assert kb.search("灯塔 航船", 2)[0].method == "hybrid" and kb.notes == []


def _three_part_config() -> object:
    from zhiku.config import KBConfig, MethodConfig

    return KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "dense": MethodConfig(kind="dense", options={"embedder": "hashing", "dim": 64}),
            # stands in for the defaults' English-only MiniLM
            "en-only": MethodConfig(
                kind="dense", options={"embedder": "hashing", "dim": 32, "languages": ["en"]}
            ),
            "hybrid": MethodConfig(
                kind="hybrid",
                options={"of": ["bm25", "dense", "en-only"], "fusion": "score", "weights": [1.0, 2.0, 0.5]},
            ),
        }
    )


def test_a_fusion_leaves_out_a_part_the_kb_language_rules_out(tmp_path: Path) -> None:
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open(str(tmp_path / "zh"), config=_three_part_config()) as kb:  # type: ignore[arg-type]
        kb.add_texts([("a.md", "a", "保险公司应当及时赔付保险金。"), ("b.md", "b", "劳动者享有年休假。")])
        assert kb.parts_in_use("hybrid") == ["bm25", "dense"]
        assert kb.indexed_parts("hybrid") == ["bm25", "dense"]
        assert not kb.method_status("en-only").built  # a Chinese KB does not embed with it
        assert kb.method_status("hybrid").built and kb.method_status("hybrid").fresh
        hits = kb.search("保险金", 2)
        assert hits[0].method == "hybrid" and hits[0].doc is not None and hits[0].doc.source == "a.md"
        assert kb.notes == []  # nothing is missing: the part was never meant for this KB
        assert set(hits[0].extra["ranks"]) <= {"bm25", "dense"}
        # Built on purpose, it joins the fusion.
        kb.build(["en-only"])
        assert kb.parts_in_use("hybrid") == ["bm25", "dense", "en-only"]


def test_a_fusion_leaves_out_a_part_that_cannot_read_the_query(tmp_path: Path) -> None:
    from zhiku.retrieve.methods.hybrid import HybridMethod
    from zhiku.service import KnowledgeBase

    docs = [
        ("a.md", "a", "The insurer pays the claim within ten days of the report."),
        ("b.md", "b", "Workers are entitled to paid annual leave every year."),
    ]
    with KnowledgeBase.open(str(tmp_path / "en"), config=_three_part_config()) as kb:  # type: ignore[arg-type]
        kb.add_texts(docs)
        assert kb.parts_in_use("hybrid") == ["bm25", "dense", "en-only"]
        assert kb.method_status("en-only").built
        hybrid = kb.method("hybrid")
        assert isinstance(hybrid, HybridMethod)
        plan = hybrid.plan("annual leave")
        assert (plan.parts, plan.weights) == (["bm25", "dense", "en-only"], [1.0, 2.0, 0.5])
        # A Chinese question in an English KB: the English-only model is left out, weights follow.
        plan = hybrid.plan("年休假")
        assert (plan.parts, plan.weights) == (["bm25", "dense"], [1.0, 2.0])
        hits = kb.search("paid annual leave", 2)
        assert hits[0].doc is not None and hits[0].doc.source == "b.md"
        assert set(hits[0].extra["ranks"]) == {"bm25", "dense", "en-only"}


def _by_language_config(en: dict[str, object]) -> object:
    from zhiku.config import KBConfig, MethodConfig

    base = _three_part_config()
    hybrid = base.methods["hybrid"]  # type: ignore[attr-defined]
    options = {**hybrid.options, "by_language": {"en": en}}
    return KBConfig(methods={**base.methods, "hybrid": MethodConfig(kind="hybrid", options=options)})  # type: ignore[attr-defined]


def test_by_language_settings_fuse_a_question_of_that_language_their_way(tmp_path: Path) -> None:
    from zhiku.retrieve.fusion import score_fusion
    from zhiku.retrieve.methods.hybrid import HybridMethod
    from zhiku.service import KnowledgeBase

    docs = [
        ("a.md", "a", "The insurer pays the claim within ten days of the report. 保险公司应当赔付。"),
        ("b.md", "b", "Workers are entitled to paid annual leave every year. 劳动者享有年休假。"),
        ("c.md", "c", "Annual reports of the insurer list every claim paid. 年度报告。"),
    ]
    en = {"normalize": "zscore", "weights": [1.0, 1.0, 0.25]}
    with KnowledgeBase.open(str(tmp_path / "kb"), config=_by_language_config(en)) as kb:  # type: ignore[arg-type]
        kb.add_texts(docs)
        hybrid = kb.method("hybrid")
        assert isinstance(hybrid, HybridMethod)
        plan = hybrid.plan("paid annual leave")
        assert (plan.parts, plan.weights, plan.fusion, plan.normalize) == (
            ["bm25", "dense", "en-only"],
            [1.0, 1.0, 0.25],
            "score",
            "zscore",
        )
        # A Chinese question keeps the general settings (and leaves the English-only part out).
        plan = hybrid.plan("年休假")
        assert (plan.parts, plan.weights, plan.normalize) == (["bm25", "dense"], [1.0, 2.0], "minmax")
        # The search itself fuses that way: the same scores as z-score fusion of the parts' lists.
        query = "annual claim paid"
        lists = [kb.ready_method(n).search(query, 50) for n in ("bm25", "dense", "en-only")]
        expected = score_fusion(lists, 3, "hybrid", [1.0, 1.0, 0.25], "zscore")
        got = kb.search(query, 3, "hybrid")
        assert [h.chunk_id for h in got] == [h.chunk_id for h in expected]
        assert [round(h.score, 9) for h in got] == [round(h.score, 9) for h in expected]
        minmax = score_fusion(lists, 3, "hybrid", [1.0, 2.0, 0.5], "minmax")
        assert [round(h.score, 9) for h in got] != [round(h.score, 9) for h in minmax]


def test_by_language_weights_must_match_the_parts(tmp_path: Path) -> None:
    import pytest

    from zhiku.errors import ConfigError
    from zhiku.service import KnowledgeBase

    for bad, said in (
        ({"weights": [1.0, 1.0]}, "by_language.en.weights has 2 values for 3 methods"),
        ({"normalize": "median"}, "normalize"),
    ):
        with pytest.raises(ConfigError, match=said):
            with KnowledgeBase.open(str(tmp_path / "kb"), config=_by_language_config(bad)) as kb:  # type: ignore[arg-type]
                kb.method("hybrid")


def test_a_default_fusion_missing_a_slow_part_keeps_its_language_settings(tmp_path: Path) -> None:
    """e5 still building in an English KB: the default searches with BM25 + MiniLM, fused the way
    English questions are (the English weights less e5's), and says so."""
    from tests.helpers.corpus import fast_config

    from zhiku.retrieve.methods.hybrid import HybridMethod
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open(str(tmp_path / "en"), config=fast_config()) as kb:
        kb.add_texts([("a.md", "a", "The insurer pays the claim within ten days of the report.")])
        # New documents: BM25 and MiniLM are rebuilt, e5 is not yet.
        kb.add_texts([("b.md", "b", "Workers are entitled to paid annual leave every year.")], build=False)
        kb.build(["bm25", "minilm"])
        # e5's first build still running: no index of it yet (a stale one would answer, issue 29)
        import shutil

        shutil.rmtree(kb.layout.index_dir("dense").resolve())
        kb.layout.index_dir("dense").unlink()
        hits = kb.search("paid annual leave", 2)
        assert hits[0].doc is not None and hits[0].doc.source == "b.md"
        assert hits[0].method == "hybrid[bm25+minilm]"
        assert kb.notes and kb.notes[0].startswith("dense is not ready")
        adhoc = kb.method("hybrid[bm25+minilm]")
        assert isinstance(adhoc, HybridMethod)
        plan = adhoc.plan("paid annual leave")
        assert (plan.parts, plan.weights, plan.normalize) == (["bm25", "minilm"], [1.0, 0.5], "zscore")
