"""Text cleaning for storage and normalisation for matching.

Two different jobs: ``clean`` keeps what a person reads (punctuation, full-width characters) and only
removes noise, because citations quote and offset into the stored text; ``fold`` is for matching
(indexing and queries alike) and applies NFKC and case folding, so "ＡＢＣ１２３" matches "abc123",
and converts Traditional Chinese to Simplified (OpenCC ``t2s``), so "營業收入" matches "营业收入"
while the stored text and citations keep the script the author wrote.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

# Zero-width and BOM characters carry no text; some corpora have whole lines of U+200B.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_TRAILING_WS = re.compile(r"[ \t\u3000]+\n")
_MANY_BLANK = re.compile(r"\n{3,}")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: str) -> str:
    """Normalise newlines, drop invisible and control characters, squeeze blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub("", text)
    text = _TRAILING_WS.sub("\n", text)
    text = _MANY_BLANK.sub("\n\n", text)
    return text.strip()


def fold(text: str, traditional: bool = True) -> str:
    """NFKC + lower case (+ Traditional → Simplified when ``traditional``): the text for matching.

    Full-width digits and letters become ASCII and case is ignored. The script conversion runs only
    when the text holds a character that OpenCC's ``t2s`` changes, so Simplified and English text
    pay one set intersection, not a conversion.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if traditional and not _traditional_chars().isdisjoint(text):
        text = _t2s().convert(text)
    return text


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _traditional_chars() -> frozenset[str]:
    """Every CJK character ``t2s`` converts on its own (about 2,700), found once per process.

    One character per line, so OpenCC's phrase rules cannot join neighbours.
    """
    chars = [chr(c) for r in _CJK_RANGES for c in range(r[0], r[1] + 1)]
    converted = _t2s().convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # a line-count change would misalign the comparison
        return frozenset(chars)
    return frozenset(a for a, b in zip(chars, converted, strict=True) if a != b)


_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_LATIN = re.compile(r"[A-Za-z]")


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among letters (CJK + Latin); 0.0 for text with no letters."""
    sample = text[:200_000]
    cjk = len(_CJK.findall(sample))
    latin = len(_LATIN.findall(sample))
    return cjk / (cjk + latin) if (cjk + latin) else 0.0


def language_of(text: str) -> str:
    """ "zh", "en" or "mixed", by the share of CJK characters."""
    r = cjk_ratio(text)
    if r >= 0.6:
        return "zh"
    if r <= 0.1:
        return "en"
    return "mixed"
