"""Prompt templates, context packing and the small parsers of the LLM layer (no server, no model)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from zhiku.config import GeneratorConfig
from zhiku.errors import ConfigError, NotFoundError, UnknownNameError, UsageError
from zhiku.generate.base import ContextBlock
from zhiku.generate.llm import (
    ChatBackend,
    LLMGenerator,
    LLMOptions,
    Message,
    first_line,
    generator_config,
    parse_llm_spec,
    strip_thinking,
)
from zhiku.generate.packing import approx_tokens, pack_blocks, split_sentences
from zhiku.generate.prompts import DEFAULTS, fill, load_templates, question_language

ZH_TEXT = (
    "第一条 为了规范农业保险活动，制定本办法。第二条 保险机构应当在十日内支付保险金。"
    "第三条 本办法自公布之日起施行。"
)
EN_TEXT = "Tomatoes need six hours of sun. Water them deeply twice a week. Prune roses in late winter."


def block(n: int, text: str, start: int = 0) -> ContextBlock:
    return ContextBlock(
        n, f"c{n}", f"d{n}", text, f"/docs/{n}.md", f"Doc {n}", "", start, start + len(text), 1.0 / n
    )


class FakeBackend(ChatBackend):
    kind = "fake"

    def __init__(self, options: LLMOptions, reply: str = "ok [1]") -> None:
        super().__init__(options)
        self.reply = reply
        self.calls: list[list[Message]] = []

    def chat(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> Iterator[str]:
        self.calls.append(list(messages))
        yield from (self.reply[i : i + 2] for i in range(0, len(self.reply), 2))


# -- token counting and sentences ---------------------------------------------------------------
def test_approx_tokens_counts_cjk_as_one_and_ascii_by_four() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("你好世界") == 4
    assert approx_tokens("hello world!") == 3
    assert approx_tokens("保险 insurance") == 2 + 3
    assert approx_tokens("，。") == 2  # full-width punctuation is a token too


@pytest.mark.parametrize(
    "text", [ZH_TEXT, EN_TEXT, "混合 text. 第二句！Third one?\n第四行", "no end mark", ""]
)
def test_split_sentences_keeps_every_character(text: str) -> None:
    parts = split_sentences(text)
    assert "".join(parts) == text
    if text == ZH_TEXT:
        assert len(parts) == 3 and parts[1].endswith("支付保险金。")
    if text == EN_TEXT:
        assert parts[0] == "Tomatoes need six hours of sun. "


# -- packing ---------------------------------------------------------------------------------------
def render(b: ContextBlock) -> str:
    return f"[{b.n}] {b.title}\n{b.text}"


def test_pack_keeps_all_blocks_that_fit_in_order() -> None:
    blocks = [block(1, ZH_TEXT), block(2, EN_TEXT), block(3, "短。")]
    packed = pack_blocks(blocks, 10_000, render)
    assert [b.n for b in packed] == [1, 2, 3] and packed == blocks


def test_pack_cuts_the_first_block_that_does_not_fit_at_a_sentence_end() -> None:
    blocks = [block(1, EN_TEXT), block(2, ZH_TEXT, start=100), block(3, "不会出现。")]
    first = approx_tokens(render(blocks[0])) + 1
    two = "".join(split_sentences(ZH_TEXT)[:2])
    room_for_two_sentences = approx_tokens(render(block(2, ""))) + 1 + approx_tokens(two)
    packed = pack_blocks(blocks, first + room_for_two_sentences, render)
    assert [b.n for b in packed] == [1, 2]
    cut = packed[1]
    assert cut.text == "第一条 为了规范农业保险活动，制定本办法。第二条 保险机构应当在十日内支付保险金。"
    assert ZH_TEXT.startswith(cut.text)
    assert (cut.start, cut.end) == (100, 100 + len(cut.text))  # the citation points at what was read


def test_pack_never_cuts_mid_sentence_and_may_return_nothing() -> None:
    blocks = [block(1, "这是一个很长很长很长很长很长很长很长很长很长的句子没有任何标点符号一直写下去")]
    assert pack_blocks(blocks, 10, render) == []
    # A less relevant block never displaces a more relevant one that did not fit.
    assert pack_blocks([*blocks, block(2, "短。")], 10, render) == []


def test_pack_counts_with_the_given_tokenizer() -> None:
    blocks = [block(1, "a. b. c."), block(2, "d.")]
    words = lambda s: len(s.split())  # noqa: E731
    packed = pack_blocks(blocks, words(render(blocks[0])) + 1, render, count=words)
    assert [b.n for b in packed] == [1]


# -- templates -------------------------------------------------------------------------------------
def test_question_language() -> None:
    assert question_language("保险金什么时候支付？") == "zh"
    assert question_language("什么是 BM25 算法") == "zh"  # mixed: answer in Chinese
    assert question_language("When should roses be pruned?") == "en"
    assert question_language("保险金", forced="en") == "en"


def test_fill_replaces_known_fields_and_keeps_other_braces() -> None:
    assert fill('Q: {question} JSON: {"a": 1} {unknown}', question="x") == 'Q: x JSON: {"a": 1} {unknown}'


def test_default_templates_say_the_three_rules_in_both_languages() -> None:
    assert "[1]" in DEFAULTS["en"].system and "do not contain" in DEFAULTS["en"].system
    assert "[1]" in DEFAULTS["zh"].system and "没有" in DEFAULTS["zh"].system
    for tpl in DEFAULTS.values():
        assert "{context}" in tpl.user and "{question}" in tpl.user and "{n}" in tpl.context_block


def test_templates_overridden_from_file_then_inline(tmp_path: Path) -> None:
    f = tmp_path / "prompts.toml"
    f.write_text(
        '[zh]\nsystem = "文件里的说明"\nuser = "资料：{context}\\n问：{question}"\n', encoding="utf-8"
    )
    t = load_templates(f, {"zh": {"system": "内联说明"}, "en": {"not_found": "Nothing."}})
    assert t["zh"].system == "内联说明" and t["zh"].user == "资料：{context}\n问：{question}"
    assert t["en"].not_found == "Nothing." and t["en"].system == DEFAULTS["en"].system
    j = tmp_path / "p.json"
    j.write_text('{"en": {"system": "json system"}}', encoding="utf-8")
    assert load_templates(j)["en"].system == "json system"


def test_bad_template_settings_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown language table 'fr'"):
        load_templates(None, {"fr": {"system": "x"}})
    with pytest.raises(ConfigError, match="Fields are"):
        load_templates(None, {"en": {"sytem": "typo"}})
    with pytest.raises(NotFoundError, match="prompt file not found"):
        load_templates(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[zh\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_templates(bad)


# -- the generator's prompt --------------------------------------------------------------------------
def test_messages_carry_instructions_blocks_and_question() -> None:
    gen = LLMGenerator(FakeBackend(LLMOptions(model="m")))
    pieces = list(gen.generate("保险金什么时候支付？", [block(1, ZH_TEXT), block(2, EN_TEXT)]))
    assert "".join(pieces) == "ok [1]" and len(pieces) > 1
    system, user = gen.backend.calls[0]  # type: ignore[attr-defined]
    assert system["role"] == "system" and system["content"] == DEFAULTS["zh"].system
    assert user["content"].startswith("资料：\n\n[1] Doc 1\n第一条")
    assert "[2] Doc 2\nTomatoes" in user["content"] and user["content"].endswith(
        "问题：保险金什么时候支付？\n\n回答（用 [n] 标注来源）："
    )
    assert gen.last_packed == [1, 2]


def test_small_window_packs_fewer_blocks_and_too_small_one_is_a_config_error() -> None:
    many = [block(n, ZH_TEXT * 3) for n in range(1, 8)]
    gen = LLMGenerator(FakeBackend(LLMOptions(model="m", context_window=700, max_tokens=200)))
    list(gen.generate("保险金什么时候支付？", many))
    assert 1 <= len(gen.last_packed) < 7 and gen.last_packed == list(range(1, len(gen.last_packed) + 1))
    tiny = LLMGenerator(FakeBackend(LLMOptions(model="m", context_window=300, max_tokens=250)))
    with pytest.raises(ConfigError, match="leaves no room for context"):
        list(tiny.generate("保险金什么时候支付？", many))


def test_no_context_says_not_found_without_calling_the_model() -> None:
    backend = FakeBackend(LLMOptions(model="m"))
    gen = LLMGenerator(backend)
    assert "".join(gen.generate("When should roses be pruned?", [])) == DEFAULTS["en"].not_found
    assert backend.calls == []


def test_standalone_question_uses_history_and_cleans_the_reply() -> None:
    backend = FakeBackend(LLMOptions(model="m"), reply="独立查询：“农业保险合同期内能否增加保险费？”\n解释…")
    gen = LLMGenerator(backend)
    assert gen.standalone_question("那能加保费吗？", []) == "那能加保费吗？"
    q = gen.standalone_question("那能加保费吗？", [("保险金什么时候支付？", "十日内支付[1]。")])
    assert q == "农业保险合同期内能否增加保险费？"
    system, user = backend.calls[0]
    assert system["content"] == DEFAULTS["zh"].rewrite_system
    assert (
        "用户：保险金什么时候支付？\n助手：十日内支付[1]。" in user["content"]
        and "追问：那能加保费吗？" in user["content"]
    )


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["<think>", "hmm, [7]", "</think>", "\n\nAnswer [1]."], "Answer [1]."),
        (["<thi", "nk>reasoning</th", "ink>  ", "Yes [2]"], "Yes [2]"),
        (["  No thinking here [1]"], "  No thinking here [1]"),
        (["<", "b>bold</b>"], "<b>bold</b>"),
        (["<think>never closed"], ""),
        ([], ""),
    ],
)
def test_strip_thinking(pieces: list[str], expected: str) -> None:
    assert "".join(strip_thinking(pieces)) == expected


def test_first_line() -> None:
    assert first_line('Standalone query: "When are roses pruned?"\nbecause') == "When are roses pruned?"
    assert first_line("\n\n  查询：退款流程  \n") == "退款流程"
    assert first_line("") == ""


# -- --llm specs ---------------------------------------------------------------------------------------
def test_parse_llm_spec() -> None:
    assert parse_llm_spec("ollama:qwen2.5:7b") == ("ollama", "qwen2.5:7b")
    assert parse_llm_spec("openai:deepseek-chat") == ("openai", "deepseek-chat")
    assert parse_llm_spec("local:/models/Qwen2.5-0.5B") == ("local", "/models/Qwen2.5-0.5B")
    assert parse_llm_spec("extractive") == ("extractive", "")
    with pytest.raises(UsageError):
        parse_llm_spec(":x")


def test_generator_config_keeps_same_backend_options_only() -> None:
    kb = GeneratorConfig(
        kind="ollama", options={"model": "old", "base_url": "http://gpu:11434", "timeout": 5}
    )
    cfg = generator_config("ollama:qwen2.5:7b", None, kb)
    assert cfg.kind == "ollama" and cfg.options == {
        "model": "qwen2.5:7b",
        "base_url": "http://gpu:11434",
        "timeout": 5,
    }
    cfg = generator_config("openai:deepseek-chat", "https://api.deepseek.com/v1", kb)
    assert cfg.options == {"model": "deepseek-chat", "base_url": "https://api.deepseek.com/v1"}
    assert generator_config(None, "http://other:1", kb).options["base_url"] == "http://other:1"
    assert generator_config(None, None, kb) is kb
    assert generator_config("extractive", None, kb).kind == "extractive"
    with pytest.raises(UnknownNameError, match="Choose one of: extractive, local, ollama, openai"):
        generator_config("gpt:4", None, kb)
    with pytest.raises(UsageError):
        generator_config("extractive:x", None, kb)


def test_make_generator_needs_a_model_and_valid_options() -> None:
    from zhiku.generate.answer import make_generator

    with pytest.raises(ConfigError, match="no model given for the ollama backend"):
        make_generator(GeneratorConfig(), "ollama")
    with pytest.raises(ConfigError, match="option temperature"):
        make_generator(GeneratorConfig(kind="ollama", options={"model": "m", "temperature": -1}))
    gen = make_generator(GeneratorConfig(), "ollama:qwen2.5:7b", "http://127.0.0.1:9")
    assert gen.describe() == "ollama:qwen2.5:7b"


def test_api_key_in_options_is_hidden_in_repr() -> None:
    opts = LLMOptions(model="m", api_key="sk-very-secret-123")  # type: ignore[arg-type]
    assert "sk-very-secret-123" not in repr(opts) and "sk-very-secret-123" not in str(opts.model_dump())
    assert opts.key() == "sk-very-secret-123"
