"""Per-KB synonyms: groups of interchangeable words, read from a plain text file.

One group per line; words separated by whitespace, or by commas (``,`` ``，`` ``、``) when the line
has one, so an English phrase can be one word of a group (``annual leave, paid leave``). ``#``
starts a comment; blank lines are ignored::

    加班费 加班工资 加班报酬
    年休假，带薪年假，年假
    annual leave, paid leave

The words are folded as the tokenizer folds text (NFKC, lower case, Traditional → Simplified), so
``加班費`` in a query or in the file is ``加班费``. Two uses, both through the KB's ``Tokenizer``:

- *tokenizing*: every word that is one run of Chinese characters is added to the KB's own jieba
  segmenter, so ``加班工资`` stays one token in documents and queries (never jieba's shared one);
- *querying*: a query word (or phrase) of a group brings the group's other words along for the
  lexical methods (``QueryTerms``); dense methods see the query text unchanged.

Only the first changes index tokens, so only the words added to jieba (``dictionary_words``) are
part of the tokenizer's identity: regrouping words that are already there needs no rebuild.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from zhiku.errors import ConfigError
from zhiku.text.normalise import fold

_FIX = "Fix tokenizer.synonyms in zhiku.toml or the file (UTF-8, one group of two or more words a line)"
_COMMAS = re.compile("[,，、]")
_CJK_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+")


@dataclass(frozen=True)
class Synonyms:
    """The groups of a synonyms file, each a tuple of folded words (equal when the content is)."""

    digest: str
    traditional: bool
    path: str = field(compare=False)
    groups: tuple[tuple[str, ...], ...] = field(compare=False)

    def dictionary_words(self) -> tuple[str, ...]:
        """The words the KB's jieba segmenter learns: those made of Chinese characters only (jieba
        never sees anything else: other scripts are split into words before it)."""
        return _dictionary_words(self)

    def words_digest(self) -> str | None:
        """What index tokens depend on: the words added to jieba (None when there are none)."""
        words = self.dictionary_words()
        return hashlib.sha256("\n".join(words).encode()).hexdigest()[:16] if words else None


def load_synonyms(path: str, traditional: bool = True) -> Synonyms:
    """Read and check a synonyms file (parsed once per content and folding)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the synonyms file {path}: {e.strerror or e}", _FIX) from e
    return _parse(path, data, traditional)


@lru_cache(maxsize=16)
def _parse(path: str, data: bytes, traditional: bool) -> Synonyms:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bad = data[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"synonyms file {path}, line {bad}: not UTF-8", "Save the file as UTF-8 (一行一组同义词)"
        ) from e
    groups: list[tuple[str, ...]] = []
    seen: dict[str, int] = {}  # folded word -> the line of its group
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = _COMMAS.split(line) if _COMMAS.search(line) else line.split()
        words = list(dict.fromkeys(w for w in (" ".join(fold(p, traditional).split()) for p in parts) if w))
        if len(words) < 2:
            raise ConfigError(
                f"synonyms file {path}, line {number}: {line!r} is a group of one word",
                "Put two or more interchangeable words on the line, separated by spaces or commas",
            )
        for w in words:
            if w in seen:
                raise ConfigError(
                    f"synonyms file {path}, line {number}: {w!r} is already in the group on line {seen[w]}",
                    "Merge the two lines into one group (a word belongs to one group)",
                )
            seen[w] = number
        groups.append(tuple(words))
    digest = hashlib.sha256(data).hexdigest()[:16]
    return Synonyms(digest, traditional, path, tuple(groups))


@lru_cache(maxsize=16)
def _dictionary_words(synonyms: Synonyms) -> tuple[str, ...]:
    return tuple(sorted({w for g in synonyms.groups for w in g if _CJK_WORD.fullmatch(w)}))


@dataclass(frozen=True)
class QueryTerms:
    """A query's tokens as the lexical methods score them.

    ``plain`` are the tokens outside every synonym group. Each entry of ``groups`` is one place in the
    query where a group's word stood: its alternatives as token tuples, the query's own wording
    first. A method scores a group by its best alternative, so the group counts once.
    """

    plain: list[str]
    groups: list[tuple[tuple[str, ...], ...]]


class SynonymMatcher:
    """Finds group words in a token list: the longest match first, left to right."""

    def __init__(self, groups: list[list[tuple[str, ...]]]) -> None:
        self._alternatives: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}
        for members in groups:
            members = [m for m in dict.fromkeys(members) if m]  # a stop word alone tokenizes to nothing
            for m in members:
                self._alternatives[m] = (m, *(o for o in members if o != m))
        self._longest = max((len(m) for m in self._alternatives), default=0)

    def match(self, tokens: list[str]) -> QueryTerms:
        plain: list[str] = []
        groups: list[tuple[tuple[str, ...], ...]] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                alts = self._alternatives.get(tuple(tokens[i : i + n]))
                if alts is not None and len(alts) > 1:
                    groups.append(alts)
                    i += n
                    break
            else:
                plain.append(tokens[i])
                i += 1
        return QueryTerms(plain, groups)
