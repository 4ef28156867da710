"""The offline answerer: quote the sentences of the top chunks that best answer the question.

No model, no download: sentences are scored by how much of the question's (weighted) tokens they
cover, with a small bonus for the chunk's rank. Below a coverage threshold it says it found nothing
instead of quoting something unrelated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from zhiku.generate.base import ContextBlock, Generator, generators
from zhiku.text.normalise import language_of
from zhiku.text.tokenize import make_tokenizer

_SENTENCE = re.compile(r"[^。！？；!?\n]+(?:[。！？；!?]+[”’\"')）】」』]*|\n|$)|[^.\n]+\.(?=\s|$)")
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")

NOT_FOUND = {
    "zh": "知识库中没有找到能回答这个问题的内容。",
    "en": "I could not find an answer to that in the knowledge base.",
}


def _weight(token: str) -> float:
    # Longer Chinese words and English words carry more meaning than single characters.
    if _CJK_CHAR.search(token):
        return float(min(len(token), 4))
    return 2.0 if len(token) > 2 else 1.0


def split_sentences(text: str) -> list[str]:
    out = []
    for part in re.split(r"(?<=[。！？；!?])|(?<=\.)\s+|\n+", text):
        part = part.strip()
        if part:
            out.append(part)
    return out


def _bigrams(text: str) -> set[str]:
    t = "".join(text.lower().split())
    return {t[i : i + 2] for i in range(len(t) - 1)}


def _similar(a: str, b: str) -> bool:
    """Near-duplicate sentences (the same fact in a guide and its FAQ) are quoted once."""
    x, y = _bigrams(a), _bigrams(b)
    return bool(x and y) and len(x & y) / min(len(x), len(y)) > 0.6


class ExtractiveGenerator(Generator):
    name = "extractive"

    def __init__(
        self, max_sentences: int = 3, min_coverage: float = 0.34, max_chars: int = 500, **_: Any
    ) -> None:
        self.max_sentences = max_sentences
        self.min_coverage = min_coverage
        self.max_chars = max_chars
        self._tokenize = make_tokenizer()

    def generate(self, question: str, contexts: Sequence[ContextBlock]) -> Iterator[str]:
        lang = "zh" if language_of(question) != "en" else "en"
        q = set(self._tokenize(question))
        total = sum(_weight(t) for t in q)
        scored: list[tuple[float, int, int, str]] = []
        for block in contexts:
            for pos, sent in enumerate(split_sentences(block.text)):
                if sent.rstrip().endswith(("?", "？")):
                    continue  # a question (an FAQ heading, a quoted query) is not an answer
                toks = set(self._tokenize(f"{block.title} {sent}"))
                cover = sum(_weight(t) for t in q & toks) / total if total else 0.0
                scored.append((cover + 0.05 / block.n, block.n, pos, sent))
        scored.sort(key=lambda s: -s[0])
        if not scored or scored[0][0] < self.min_coverage:
            yield NOT_FOUND[lang]
            return
        best = scored[0][0]
        chosen: list[tuple[float, int, int, str]] = []
        for s in scored[: self.max_sentences * 4]:
            if s[0] < 0.6 * best or len(chosen) == self.max_sentences:
                break
            if not any(_similar(s[3], c[3]) for c in chosen):
                chosen.append(s)
        chosen.sort(key=lambda s: (s[1], s[2]))
        length = 0
        for i, (_, n, _, sent) in enumerate(chosen):
            if i and length + len(sent) > self.max_chars:
                break
            length += len(sent)
            yield f"{sent}[{n}]" if lang == "zh" else ("" if i == 0 else " ") + f"{sent} [{n}]"


generators.add("extractive", ExtractiveGenerator)
