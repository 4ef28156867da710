"""Tokenisation for matching: jieba for Chinese runs, word tokens for everything else.

One tokenizer serves indexing and queries alike (same folding, same stop words, same stemming), so
a query token can only fail to match for a real reason. jieba and PyStemmer load on first use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Literal

from zhiku.text.normalise import fold

_CJK_RUN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+"
# Words of other scripts: letters/digits that are not CJK; "2.13.0" and "gb18030" stay whole.
_WORD = r"[^\W_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+(?:\.[0-9]+)*"
_SEGMENTS = re.compile(f"({_CJK_RUN})|({_WORD})")
_ASCII_ALPHA = re.compile(r"^[a-z]+$")

Mode = Literal["precise", "search"]


@lru_cache(maxsize=1)
def _jieba() -> object:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def load_user_dict(path: str) -> None:
    _jieba().load_userdict(path)  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def _stemmer() -> Callable[[str], str]:
    import Stemmer

    stem = Stemmer.Stemmer("english")
    return stem.stemWord  # type: ignore[no-any-return]


class Tokenizer:
    """Callable ``text -> list[str]``.

    ``mode="search"`` adds jieba's sub-words of long words (中华人民共和国 → 中华, 人民, 共和国 …),
    which helps a short query match a long compound in the text.
    """

    def __init__(
        self,
        *,
        stopwords: Iterable[str] = (),
        stem_english: bool = True,
        mode: Mode = "precise",
        fold_traditional: bool = True,
    ) -> None:
        self.stopwords = frozenset(stopwords)
        self.stem_english = stem_english
        self.mode = mode
        self.fold_traditional = fold_traditional

    def __call__(self, text: str) -> list[str]:
        jieba = _jieba()
        cut = jieba.cut_for_search if self.mode == "search" else jieba.cut  # type: ignore[attr-defined]
        stem = _stemmer() if self.stem_english else None
        stop = self.stopwords
        out: list[str] = []
        for m in _SEGMENTS.finditer(fold(text, self.fold_traditional)):
            cjk, word = m.group(1), m.group(2)
            if cjk:
                out.extend(t for t in cut(cjk, HMM=True) if t not in stop)
            elif word not in stop:
                out.append(stem(word) if stem and _ASCII_ALPHA.match(word) else word)
        return out


def make_tokenizer(
    stopwords: bool = True, stem_english: bool = True, mode: Mode = "precise", fold_traditional: bool = True
) -> Tokenizer:
    from zhiku.text.stopwords import stopwords as load_stopwords

    return Tokenizer(
        stopwords=load_stopwords() if stopwords else (),
        stem_english=stem_english,
        mode=mode,
        fold_traditional=fold_traditional,
    )
