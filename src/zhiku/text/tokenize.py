"""Tokenisation for matching: jieba for Chinese runs, word tokens for everything else.

One tokenizer serves indexing and queries alike (same folding, same stop words, same stemming), so
a query token can only fail to match for a real reason. jieba and PyStemmer load on first use.

Each KB with a user dictionary gets its own ``jieba.Tokenizer`` instance: jieba's module-level
``load_userdict`` changes how *every* KB in the process splits text (a server holds many), so it
is never called. The dictionary's content hash is part of ``Tokenizer.describe()``, which index
manifests record: a changed dictionary makes the indexes stale.

A KB's synonyms file (``zhiku.text.synonyms``) works through the same segmenter: its Chinese words
are added to it (so ``加班工资`` stays one token), and ``query_terms`` gives the lexical methods a
query's tokens with each group word's alternatives. Only the added words are part of
``describe()``: the groups themselves are applied at query time and change no index.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from zhiku.text.normalise import fold
from zhiku.text.synonyms import QueryTerms, SynonymMatcher, load_synonyms

_CJK_RUN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+"
# Words of other scripts: letters/digits that are not CJK; "2.13.0" and "gb18030" stay whole.
_WORD = r"[^\W_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+(?:\.[0-9]+)*"
_SEGMENTS = re.compile(f"({_CJK_RUN})|({_WORD})")
_ASCII_ALPHA = re.compile(r"^[a-z]+$")

Mode = Literal["precise", "search"]


@lru_cache(maxsize=16)
def _jieba_with(path: str | None, digest: str | None, words: tuple[str, ...]) -> Any:
    """The segmenter for a user dictionary (by content hash: an edit reloads it) and the words of a
    synonyms file; one shared default one when there are neither (nothing ever adds words to it).
    Its dictionary loads shard by shard as texts need it (``text/jieba_dict.py``)."""
    from zhiku.text.jieba_dict import segmenter

    return segmenter(path, digest, words)


def dictionary_digest(path: str) -> str:
    from zhiku.errors import ConfigError

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError as e:
        raise ConfigError(
            f"cannot read the jieba user dictionary {path}: {e.strerror or e}",
            "Fix tokenizer.user_dict in zhiku.toml (one word per line, optionally a frequency)",
        ) from e


@lru_cache(maxsize=1)
def _stemmer() -> Callable[[str], str]:
    import Stemmer

    stem = Stemmer.Stemmer("english")
    return stem.stemWord


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
        user_dict: str | None = None,
        fold_traditional: bool = True,
        synonyms: str | None = None,
    ) -> None:
        self.stopwords = frozenset(stopwords)
        self.stem_english = stem_english
        self.mode = mode
        self.user_dict = user_dict
        self.dictionary = dictionary_digest(user_dict) if user_dict else None
        self.fold_traditional = fold_traditional
        self.synonyms = load_synonyms(synonyms, fold_traditional) if synonyms else None
        self._matcher: SynonymMatcher | None = None

    def _segmenter(self) -> Any:
        words = tuple(self.synonyms.dictionary_words()) if self.synonyms else ()
        return _jieba_with(self.user_dict if self.dictionary else None, self.dictionary, words)

    def describe(self) -> dict[str, Any]:
        """What an index built from these tokens depends on (recorded in its manifest)."""
        out = {
            "stopwords": bool(self.stopwords),
            "stem_english": self.stem_english,
            "mode": self.mode,
            "user_dict": self.dictionary,
            "fold_traditional": self.fold_traditional,
        }
        words = self.synonyms.words_digest() if self.synonyms else None
        if words:  # only then, so the indexes of KBs without synonyms stay fresh across upgrades
            out["synonyms"] = words
        return out

    def query_terms(self, query: str) -> QueryTerms:
        """The query's tokens with the alternatives its synonym-group words bring (lexical methods)."""
        tokens = self(query)
        if not self.synonyms or not self.synonyms.groups:
            return QueryTerms(tokens, [])
        if self._matcher is None:
            # Each group word tokenized as the text will be (stemmed, stop words out), once per KB.
            self._matcher = SynonymMatcher(
                [[tuple(self(w)) for w in group] for group in self.synonyms.groups]
            )
        return self._matcher.match(tokens)

    def __call__(self, text: str) -> list[str]:
        seg = self._segmenter()
        cut = seg.cut_for_search if self.mode == "search" else seg.cut
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
    stopwords: bool = True,
    stem_english: bool = True,
    mode: Mode = "precise",
    user_dict: str | None = None,
    fold_traditional: bool = True,
    synonyms: str | None = None,
) -> Tokenizer:
    from zhiku.text.stopwords import stopwords as load_stopwords

    return Tokenizer(
        stopwords=load_stopwords() if stopwords else (),
        stem_english=stem_english,
        mode=mode,
        user_dict=user_dict,
        fold_traditional=fold_traditional,
        synonyms=synonyms,
    )


def tokenizer_identity(user_dict: str | None, synonyms: str | None, traditional: bool) -> dict[str, Any]:
    """What the tokenizer's files add to its settings, by content (paths resolved): a catalog's
    recorded chunk settings use it, so editing a file shows as a needed re-chunk, moving it does not."""
    words = load_synonyms(synonyms, traditional).words_digest() if synonyms else None
    return {"user_dict": dictionary_digest(user_dict) if user_dict else None, "synonyms": words}


def warm(tokenizer: Tokenizer) -> None:
    """Load the whole segmenter now (before forking workers, so they inherit it)."""
    tokenizer._segmenter().load_all()
