"""The offline answerer reads for meaning: numbers, question type, neighbours, refusals that help."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from zhiku.embed.base import Embedder
from zhiku.generate.answer import NO_TEXT, answer_question, resolve_citations
from zhiku.generate.base import ContextBlock, Generator
from zhiku.generate.extractive import NOT_FOUND, RELATED, ExtractiveGenerator, asks_amount, sentence_spans
from zhiku.types import Chunk, DocumentInfo, Hit


def block(n: int, text: str, title: str = "条例", start: int = 0) -> ContextBlock:
    return ContextBlock(n, f"c{n}", f"d{n}", text, f"/docs/{n}.md", title, "", start, start + len(text), 1.0)


def answer(question: str, *texts: str) -> str:
    return "".join(ExtractiveGenerator().generate(question, [block(i, t) for i, t in enumerate(texts, 1)]))


def test_sentences_keep_the_article_label_and_split_items() -> None:
    text = (
        "第四条 保险机构应当在十日内支付。但是，另有约定的除外。\n"
        "第五条 有下列情形之一的：（一）欺诈；（二）逾期。"
    )
    sents = [s for _, _, s in sentence_spans(text)]
    assert sents[0] == "第四条 保险机构应当在十日内支付。" and sents[1] == "但是，另有约定的除外。"
    assert sents[2] == "第五条 有下列情形之一的：（一）欺诈；" or "（一）欺诈；" in sents
    for s, e, t in sentence_spans(text):
        assert text[s:e] == t


def test_a_number_written_in_digits_matches_one_in_chinese() -> None:
    text = (
        "劳动者在该用人单位连续工作满十年的，应当订立无固定期限劳动合同。"
        "用人单位应当按月支付工资。劳动合同期满的，劳动合同终止。"
    )
    out = answer("在公司干满10年了，合同怎么签？", text)
    assert "连续工作满十年" in out and out.endswith("[1]")


def test_a_how_long_question_prefers_the_sentence_with_a_duration() -> None:
    assert (
        asks_amount("保险金多久之内要付？")
        and asks_amount("How many strokes?")
        and not asks_amount("谁负责？")
    )
    text = "保险机构应当及时支付保险金。保险机构应当在达成协议后十日内支付保险金。保险金由保险机构支付。"
    out = answer("保险金多久之内要付？", text)
    assert out.startswith("保险机构应当在达成协议后十日内支付保险金。[1]")


def test_a_proviso_comes_with_its_rule() -> None:
    text = "租赁期限不得超过二十年。但是，当事人另有约定的除外。出租人应当按照约定交付租赁物。"
    out = answer("租赁期限最长多少年？", text)
    assert "不得超过二十年" in out and "但是，当事人另有约定的除外" in out


def test_a_list_comes_with_its_items() -> None:
    text = (
        "有下列情形之一的，用人单位可以解除劳动合同：（一）严重违反规章制度的；（二）严重失职的；"
        "其他事项另行规定。"
    )
    out = answer("用人单位在什么情形下可以解除劳动合同？", text)
    assert "（一）严重违反规章制度的" in out and "（二）严重失职的" in out


def test_the_answer_is_short_and_each_sentence_cited() -> None:
    a = "保险机构应当在达成协议后十日内支付保险金。" * 1
    b = "投保人应当如实告知。保险费按年度缴纳。保险金的支付期限为十日。其他事项由合同约定。"
    out = answer("保险金多少日内支付？", a, b)
    assert out.count("[") <= 3 and len(out) < 200 and "[1]" in out


def test_a_refusal_lists_the_closest_passages() -> None:
    gen = ExtractiveGenerator()
    blocks = [
        block(1, "番茄每天需要六小时日照。"),
        block(2, "玫瑰在冬末修剪。"),
        block(3, "土壤要排水良好。"),
    ]
    out = "".join(gen.generate("量子计算机如何分解大整数？", blocks))
    assert out.startswith(NOT_FOUND["zh"]) and RELATED["zh"] in out
    assert "[1]" in out and "[2]" in out and "[3]" in out and gen.last_refused


def test_a_refused_answer_cites_the_related_passages_but_found_nothing() -> None:
    hits = _hits(["番茄每天需要六小时日照。", "玫瑰在冬末修剪。"])
    a = answer_question("量子计算机如何分解大整数？", hits, ExtractiveGenerator())
    assert not a.found and [c.n for c in a.citations] == [1, 2] and a.scoring == "lexical"
    b = answer_question("番茄每天需要多少小时日照？", hits, ExtractiveGenerator())
    assert b.found and b.citations[0].spans == ((0, len("番茄每天需要六小时日照。")),)


def test_bad_input_gets_a_sensible_answer() -> None:
    gen = ExtractiveGenerator()
    assert "".join(gen.generate("保险金多久支付？", [])) == NOT_FOUND["zh"]  # a KB with no chunks
    assert "".join(gen.generate("   ", [block(1, "保险金十日内支付。")])).startswith(NOT_FOUND["zh"])
    long_q = "保险金" + "多久支付" * 2500  # 10,000 characters
    out = "".join(gen.generate(long_q, [block(1, "保险机构应当在十日内支付保险金。")]))
    assert "[1]" in out


class _Meaning(Embedder):
    """A tiny embedder that knows 老公 and 配偶 mean the same (what a dense model brings)."""

    name = "meaning"
    dim = 2

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.array(
            [[1.0, 0.0] if ("配偶" in t or "老公" in t) else [0.0, 1.0] for t in texts], np.float32
        )


def test_dense_scoring_reads_meaning_and_says_so() -> None:
    off = ExtractiveGenerator()
    off.use_embedder(_Meaning())
    assert off.embedder is None and off.scoring == "lexical"  # answer-time embedding is opt-in
    gen = ExtractiveGenerator(dense=True)
    gen.use_embedder(_Meaning())
    text = "献血者本人免交临床用血费用。献血者的配偶免交临床用血费用。献血应当自愿。"
    question = "献血者老公的临床用血费用免交吗？"
    words = "".join(ExtractiveGenerator().generate(question, [block(1, text)]))
    assert words.startswith("献血者本人免交")  # by words alone the two sentences tie; the first wins
    out = "".join(gen.generate(question, [block(1, text)]))
    assert out.startswith("献血者的配偶免交") and gen.scoring == "dense+lexical"


class _Silent(Generator):
    name = "silent"

    def __init__(self, text: str) -> None:
        self.text = text

    def generate(self, question: str, contexts: Sequence[ContextBlock]) -> Iterator[str]:
        if self.text:
            yield self.text


def test_an_llm_returning_nothing_or_garbage() -> None:
    hits = _hits(["保险机构应当在十日内支付保险金。"])
    empty = answer_question("保险金多久支付？", hits, _Silent(""))
    assert empty.text == NO_TEXT["zh"] and not empty.found
    garbage = answer_question("保险金多久支付？", hits, _Silent("\x00\ufffd[[[]]] [99]"))
    assert "[99]" not in garbage.text and garbage.invalid_citations == (99,) and not garbage.found


def test_spans_map_to_document_offsets() -> None:
    b = block(1, "甲。乙说十日。", start=100)
    _, cites, _ = resolve_citations("乙说十日。[1]", [b], {1: [(2, 7)]})
    assert cites[0].spans == ((102, 107),)


def _hits(texts: list[str]) -> list[Hit]:
    out = []
    for i, t in enumerate(texts, 1):
        chunk = Chunk(f"c{i}", f"d{i}", i - 1, t, 0, len(t))
        doc = DocumentInfo(f"d{i}", f"/docs/{i}.md", f"文档{i}", "markdown", "hash", len(t), 1, 0.0)
        out.append(Hit(f"c{i}", 1.0 / i, "bm25", chunk=chunk, doc=doc))
    return out


def test_a_when_question_prefers_the_sentence_with_a_date() -> None:
    text = (
        "北京大学是中国第一所国立综合性大学。北京大学创办于1898年，初名京师大学堂。北京大学的校园位于海淀区。"
    )
    assert answer("北京大学是什么时候创办的？", text).startswith("北京大学创办于1898年")


def test_the_scoring_models_read_only_features_the_answerer_computes() -> None:
    """A feature renamed in ``plan`` but not in MODEL/REFUSAL would silently weigh nothing."""
    from zhiku.generate.extractive import MODEL, REFUSAL

    gen = ExtractiveGenerator()
    for question, text in (
        ("保险机构在多少日内支付？", "保险机构应当在十日内支付。"),
        ("When did the library open?", "The library opened in 1898."),
    ):
        plan = gen.plan(question, [block(1, text)])
        features = set(gen.last_candidates[0].features)
        assert set(MODEL["zh"]) <= features and set(MODEL["en"]) <= features
        assert set(REFUSAL["zh"]) - {"bias", "threshold"} <= set(plan.evidence)
        assert set(REFUSAL["en"]) - {"bias", "threshold"} <= set(plan.evidence)


def test_the_refusal_answers_a_covering_sentence_and_refuses_an_unrelated_one() -> None:
    covering = [block(1, "保险机构应当在与被保险人达成赔偿协议后十日内支付保险金。")]
    unrelated = [block(1, "文职人员可以依法辞职。用人单位应当按月支付工资。")]
    gen = ExtractiveGenerator()
    assert gen.plan("保险机构应当在达成赔偿协议后多少日内支付保险金？", covering).answerable > 0
    assert gen.plan("保险机构应当在达成赔偿协议后多少日内支付保险金？", unrelated).answerable < 0
    # The offset moves the line: a large one answers even from the unrelated passage.
    assert not ExtractiveGenerator(refuse_offset=20).plan("保险机构多少日内支付保险金？", unrelated).refused


def test_the_section_heading_says_what_a_sentence_is_about() -> None:
    text = "Tomatoes need at least six hours of direct sunlight every day. Water them deeply twice a week."
    tomatoes = ContextBlock(
        1, "c1", "d1", text, "/docs/garden.md", "Gardening guide", "Tomatoes", 0, len(text), 1.0
    )
    got = "".join(ExtractiveGenerator().generate("How often should I water tomatoes?", [tomatoes]))
    assert got == "Water them deeply twice a week. [1]"  # not refused for want of "tomatoes" in it
