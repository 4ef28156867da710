"""jieba's dictionary loaded shard by shard from the cache cuts exactly as jieba's whole one does,
and a damaged or truncated cache file is noticed, rebuilt, and never used."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from zhiku.text import jieba_dict
from zhiku.user_cache import DamagedCacheFile, ShardTable, write_table

TEXT = (
    "用人单位解除劳动合同的，应当向劳动者支付经济补偿金。中华人民共和国民法典自二〇二一年一月一日起施行。"
    "当事人对自己提出的主张，有责任提供证据。加班工资按照不低于工资的百分之一百五十支付。"
    "国务院有关部门依照本条例的规定负责农业保险的监督管理工作，保险机构应当及时赔付。"
    "网约车司机在平台接单后拒载的，乘客可以投诉；外卖骑手的工伤认定依照有关规定办理。"
)


def sentences(n: int, seed: int) -> list[str]:
    """The text's sentences and random recombinations of its characters (unseen words included)."""
    rng = random.Random(seed)
    chars = [c for c in TEXT if c not in "，。；"]
    out = [s for s in TEXT.replace("；", "。").split("。") if s]
    out += ["".join(rng.choice(chars) for _ in range(rng.randint(2, 30))) for _ in range(n)]
    return out


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZHIKU_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_lazy_segmenter_cuts_as_jieba_does(cache: Path, tmp_path: Path) -> None:
    user = tmp_path / "user.txt"
    user.write_text("经济补偿金 50000\n外卖骑手\n网约车 3 n\n", encoding="utf-8")
    for user_dict, words in ((None, ()), (str(user), ("加班工资", "农业保险"))):
        digest = "d1" if user_dict else None
        whole = jieba_dict.full_segmenter(user_dict, words)
        first = jieba_dict.segmenter(user_dict, digest, words)  # builds the table
        assert jieba_dict.table_path(digest, words).exists()
        lazy = jieba_dict.segmenter(user_dict, digest, words)  # a later process: reads it
        assert lazy._table is not None and not lazy.FREQ  # nothing loaded before a text needs it
        assert lazy.lcut(TEXT[:20]) == whole.lcut(TEXT[:20])
        assert 0 < len(lazy.FREQ) < len(whole.FREQ) / 50  # only the shards of its character pairs
        for s in sentences(200, seed=len(words)):
            for seg in (first, lazy):
                assert seg.lcut(s, HMM=True) == whole.lcut(s, HMM=True), s
                assert seg.lcut_for_search(s) == whole.lcut_for_search(s), s
        lazy.load_all()
        assert lazy.FREQ == whole.FREQ and lazy.total == whole.total
    # the user dictionary and the words are part of the key: a table for each
    assert len(list((cache / "jieba").glob("dict-*.shards"))) == 2


def test_a_damaged_or_truncated_table_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "t.shards"
    write_table(path, [(f"词{i}", i) for i in range(5000)], {"total": 7})
    table = ShardTable(path)
    found: dict[str, int] = {}
    table.fill_all(found)
    assert found == {f"词{i}": i for i in range(5000)} and table.extra == {"total": 7}
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])  # truncated
    with pytest.raises(DamagedCacheFile, match="truncated"):
        ShardTable(path)
    damaged = bytearray(data)
    damaged[-50] ^= 0xFF  # one flipped bit in a shard: found when that shard is read
    path.write_bytes(bytes(damaged))
    with pytest.raises(DamagedCacheFile, match="damaged"):
        ShardTable(path).fill_all({})
    damaged = bytearray(data)
    damaged[40] ^= 0xFF  # in the header's offsets
    path.write_bytes(bytes(damaged))
    with pytest.raises(DamagedCacheFile):
        ShardTable(path)
    path.write_bytes(b"")
    with pytest.raises(DamagedCacheFile):
        ShardTable(path)


def test_a_damaged_jieba_table_is_rebuilt_and_never_used(cache: Path) -> None:
    whole = jieba_dict.full_segmenter(None, ())
    jieba_dict.segmenter(None, None, ())
    path = jieba_dict.table_path(None, ())
    good = path.read_bytes()
    sentence = "用人单位解除劳动合同的，应当向劳动者支付经济补偿金"
    # Damaged where the sentence's shards are (every shard's bytes flipped): at open time the header
    # is intact, so the damage is found when the first cut reads a shard; the cut is still right.
    table = ShardTable(path)
    bad = bytearray(good)
    for i in range(table.shards):
        a, b = table._offsets[i], table._offsets[i + 1]
        if b > a:
            bad[a] ^= 0x55
    path.write_bytes(bytes(bad))
    seg = jieba_dict.segmenter(None, None, ())
    assert seg.lcut(sentence) == whole.lcut(sentence)
    assert seg._table is None and seg.FREQ == whole.FREQ  # it fell back to the whole dictionary
    assert rebuilt(path) == whole.FREQ  # ... and wrote the table again
    # Truncated: noticed when opened, rebuilt at once.
    path.write_bytes(good[: len(good) // 2])
    seg = jieba_dict.segmenter(None, None, ())
    assert seg.lcut(sentence) == whole.lcut(sentence)
    assert rebuilt(path) == whole.FREQ


def rebuilt(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    ShardTable(path).fill_all(found)
    return found
