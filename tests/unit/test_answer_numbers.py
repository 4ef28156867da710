"""Numbers however written (generate/numbers.py): the offline answerer matches 十年 with 10年."""

from __future__ import annotations

import pytest

from zhiku.generate.numbers import chinese_to_int, has_amount, numbers_in


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("十", 10),
        ("十五", 15),
        ("三十", 30),
        ("一百零五", 105),
        ("两千", 2000),
        ("一万二千", 12000),
        ("十二万", 120000),
        ("一亿零三百万", 103_000_000),
        ("二〇二一", 2021),
        ("零", 0),
    ],
)
def test_chinese_numerals(text: str, value: int) -> None:
    assert chinese_to_int(text) == value


def test_not_a_numeral() -> None:
    assert chinese_to_int("十年") is None and chinese_to_int("") is None


@pytest.mark.parametrize(
    ("a", "b"),
    [("十年", "满10年"), ("三十日", "30日内"), ("百分之五", "5%"), ("两个月", "2个月"), ("１０日", "十日")],
)
def test_the_same_number_written_two_ways_matches(a: str, b: str) -> None:
    assert numbers_in(a) & numbers_in(b)
    assert {n for n in numbers_in(a) if not n.isdigit()} == {n for n in numbers_in(b) if not n.isdigit()}


def test_words_with_one_are_not_numbers() -> None:
    assert numbers_in("一般规定应当统一") == set()
    assert numbers_in("十年") != numbers_in("十日")


def test_amounts_durations_and_dates() -> None:
    assert has_amount("应当在十日内支付") and has_amount("罚款5000元") and has_amount("2021年施行")
    assert has_amount("two piston strokes") and has_amount("百分之五")
    # an article's number is a position, not an amount
    assert not has_amount("第十条 保险机构应当及时赔付") and not has_amount("一般规定")
