from __future__ import annotations

from zhiku.text.normalise import clean, fold, language_of
from zhiku.text.tokenize import make_tokenizer


def test_fold_makes_fullwidth_ascii_and_lowercase() -> None:
    assert fold("ＡＢＣ１２３ Hello") == "abc123 hello"


def test_clean_removes_invisible_and_normalises_newlines() -> None:
    assert clean("a\u200bb\r\nc\rd\n\n\n\ne  \n") == "ab\nc\nd\n\ne"


def test_language_of() -> None:
    assert language_of("这是中文文本，讲的是农业保险。") == "zh"
    assert language_of("This is English text about insurance.") == "en"
    assert language_of("知库 zhiku supports Chinese and English documents 中文和英文") == "mixed"


def test_tokenizer_jieba_words_stopwords_and_stemming() -> None:
    tok = make_tokenizer()
    zh = tok("农业保险合同可以随便解除吗")
    assert "农业" in zh and "解除" in zh and "可以" in zh
    assert "吗" not in zh  # a particle, in the stop list
    en = tok("The cats were RUNNING quickly")
    assert en == ["cat", "run", "quick"]
    # query and document fold the same way: full-width digits and case
    assert tok("ＧＢ１８０３０ 编码") == tok("gb18030 编码")
    assert "2.13.0" in tok("torch 2.13.0")


def test_tokenizer_search_mode_adds_subwords() -> None:
    precise = make_tokenizer(mode="precise")("中华人民共和国保险法")
    search = make_tokenizer(mode="search")("中华人民共和国保险法")
    assert set(precise) < set(search) and "人民" in search


def test_fold_converts_traditional_to_simplified_only_for_matching() -> None:
    from zhiku.text.normalise import fold

    assert fold("營業收入同比增長") == "营业收入同比增长"
    assert fold("营业收入同比增长") == "营业收入同比增长"  # Simplified passes through
    assert fold("頭髮 ABC") == "头发 abc"
    assert fold("營業收入", traditional=False) == "營業收入"


def test_tokens_of_either_script_are_the_same() -> None:
    from zhiku.text.tokenize import make_tokenizer

    tokenize = make_tokenizer()
    assert tokenize("農業保險條例規定保險費補貼") == tokenize("农业保险条例规定保险费补贴")
    assert make_tokenizer(fold_traditional=False)("農業保險") != tokenize("農業保險")
