from __future__ import annotations

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
    assert "".join(gen.generate("How do quantum computers factor integers?", ctx)) == NOT_FOUND["en"]
    assert "".join(gen.generate("量子计算机如何分解整数？", ctx)) == NOT_FOUND["zh"]


def test_invalid_citations_are_removed_and_reported() -> None:
    text, cites, invalid = resolve_citations("A [1] B [7] C [1]", [block(1, "x")])
    assert text == "A [1] B  C [1]" and [c.n for c in cites] == [1] and invalid == [7]
