"""Numbers in text, however written: 十年 = 10年, 三十日 = 30日, 百分之五 = 5%, 两个月 = 2个月.

The offline answerer matches a question's number against a passage's and asks whether a sentence
holds an amount at all (a "多少/几/多久" question wants one). Written here rather than taken from
PyPI: cn2an (the maintained converter) brings its own dependencies (proces, PyYAML) and a regex
layer much larger than the one job needed here, which is to *find* numbers in running text and
give each a canonical spelling; 60 lines do that and are tested on their own.

Only matching uses these forms: the answer always quotes the passage as written.
"""

from __future__ import annotations

import re

CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_SMALL = {"十": 10, "百": 100, "千": 1000}
_LARGE = {"万": 10_000, "亿": 100_000_000}
_CN = "零〇一二两三四五六七八九十百千万亿"

#: units a number is counted in: a number with one of these is an amount, a duration or a date
UNITS = (
    "周岁|岁|年|个月|月|周|星期|日|天|小时|时|分钟|秒|倍|次|人|名|个|件|元|万元|亿元|公里|千米|米|"
    "平方米|公顷|亩|吨|千克|公斤|克|%|‰|项|条|款|届|级|层|辆|台|户|份|页|分"
)
_NUMBER = re.compile(rf"(?P<pct>百分之|千分之)?(?P<num>\d+(?:\.\d+)?|[{_CN}]+)(?P<unit>{UNITS})?")
_EN_NUMBER = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|dozen|half|percent|\d[\d,.]*)\b",
    re.I,
)
_FULLWIDTH = str.maketrans("０１２３４５６７８９．％", "0123456789.%")


def chinese_to_int(text: str) -> int | None:
    """``"三十"`` -> 30, ``"一千零五"`` -> 1005, ``"十五"`` -> 15, ``"二〇二一"`` -> 2021;
    None if ``text`` is not a numeral."""
    if not text or any(ch not in _CN for ch in text):
        return None
    if all(ch in CN_DIGITS for ch in text) and len(text) > 1:
        return int("".join(str(CN_DIGITS[ch]) for ch in text))  # 二〇二一: digit by digit (a year)
    total = section = 0
    digit: int | None = None
    for ch in text:
        if ch in CN_DIGITS:
            digit = CN_DIGITS[ch]
        elif ch in _SMALL:
            section += (1 if digit is None else digit) * _SMALL[ch]
            digit = None
        else:  # 万, 亿
            section += digit or 0
            total = (total + section) * _LARGE[ch] if _LARGE[ch] > total else total + section * _LARGE[ch]
            section, digit = 0, None
    return total + section + (digit or 0)


def _canonical(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def numbers_in(text: str) -> set[str]:
    """The numbers of ``text`` in canonical form: ``"10年"`` for 十年 and 10年, ``"5%"`` for 百分之五,
    and each bare value (``"10"``) too, so 满10年 matches 十年以上.

    A lone 一 without a unit is left out: it is mostly a word (一般, 统一, 一致), not a number.
    """
    out: set[str] = set()
    for m in _NUMBER.finditer(text.translate(_FULLWIDTH)):
        raw, unit, pct = m.group("num"), m.group("unit") or "", m.group("pct")
        if raw[0].isdigit():
            value: float | None = float(raw)
        else:
            if raw in {"一", "两", "二"} and not unit and not pct:
                continue
            if raw in {"万", "亿", "千", "百"}:
                continue  # a unit word alone (万元 comes through the unit), not a number
            value = chinese_to_int(raw)
        if value is None:
            continue
        if pct:
            unit = "%" if pct == "百分之" else "‰"
        number = _canonical(value)
        out.add(number)
        if unit:
            out.add(number + unit)
    return out


def has_amount(text: str) -> bool:
    """Whether ``text`` holds a number with a unit, a percentage or a digit string (an amount,
    a duration, a date)."""
    text = text.translate(_FULLWIDTH)
    if _EN_NUMBER.search(text):
        return True
    for m in _NUMBER.finditer(text):
        if m.start() and text[m.start() - 1] == "第":
            continue  # 第十条, 第3款: a position, not an amount
        if m.group("unit") or m.group("pct") or m.group("num")[0].isdigit():
            raw = m.group("num")
            if raw[0].isdigit() or chinese_to_int(raw) is not None:
                return True
    return False
