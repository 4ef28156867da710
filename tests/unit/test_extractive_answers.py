"""The extractive answerer quotes only what covers the question (issue 15): made-up passages in the
shape of the reported cases, not a test split."""

from __future__ import annotations

from zhiku.generate.answer import answer_question
from zhiku.generate.base import ContextBlock
from zhiku.generate.extractive import NOT_FOUND, ExtractiveGenerator
from zhiku.types import Chunk, DocumentInfo, Hit

CONTRACT = (
    "由村民委员会组织农民投保的，保险机构应当在订立农业保险合同时，制定投保清单，详细列明被保险人的投保信息。"
    "第十一条 在农业保险合同有效期内，合同当事人不得因保险标的的危险程度发生变化"
    "增加保险费或者解除农业保险合同。"
    "保险机构按照农业保险合同约定，可以采取抽样方式核定保险标的的损失程度。"
)
OTHER = "第六十三条 用人单位可以依法辞退文职人员或者单方面解除聘用合同。第六十四条 文职人员可以依法辞职。"
README = (
    "The corpus is one document per file. Each document keeps its revision date in the file name. "
    "Near-duplicate documents exist for laws with two revisions."
)


def block(n: int, text: str, title: str) -> ContextBlock:
    return ContextBlock(n, f"c{n}", f"d{n}", text, f"/docs/{n}.md", title, "", 0, len(text), 1.0)


def test_only_sentences_that_cover_the_question_are_quoted() -> None:
    ctx = [block(1, CONTRACT, "农业保险条例"), block(2, OTHER, "文职人员条例")]
    text = "".join(ExtractiveGenerator().generate("农业保险合同可以随便解除吗", ctx))
    assert text.startswith("第十一条 在农业保险合同有效期内") and "[1]" in text
    assert "投保清单" not in text and "文职人员" not in text  # on the topic, but not about 解除


def test_not_found_when_most_of_the_question_is_in_no_passage() -> None:
    ctx = [block(1, README, "Corpus README")]
    refusal = "".join(ExtractiveGenerator().generate("How do I delete a document?", ctx))
    assert refusal.startswith(NOT_FOUND["en"] + "\nPossibly related:")  # it lists the passage to read
    # The same passage does answer what it is about.
    assert "one document per file" in "".join(
        ExtractiveGenerator().generate("How many documents per file?", ctx)
    )


def _hit(n: int, text: str, title: str) -> Hit:
    doc = DocumentInfo(f"d{n}", f"/docs/{n}.md", title, "markdown", "h", len(text), 1, 0.0)
    return Hit(f"c{n}", 1.0 / n, "bm25", chunk=Chunk(f"c{n}", f"d{n}", 0, text, 0, len(text)), doc=doc)


def test_sources_are_numbered_from_one() -> None:
    hits = [
        _hit(1, "Roses like sun and a sheltered spot.", "Roses"),
        _hit(2, "Tomatoes need at least six hours of direct sunlight every day.", "Tomatoes"),
        _hit(3, "Water tomatoes deeply twice a week.", "Watering"),
    ]
    a = answer_question("How much sunlight do tomatoes need?", hits, ExtractiveGenerator())
    assert a.text == "Tomatoes need at least six hours of direct sunlight every day. [1]"
    assert [(c.n, c.chunk_id) for c in a.citations] == [(1, "c2")]  # the second hit, cited as [1]
    assert len(a.hits) == 3  # retrieval's result is kept whole
