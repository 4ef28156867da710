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


#: words of asking rather than of the subject ("可以随便解除吗", "how much … need"): a sentence
#: containing them is no closer to an answer (the tokenizer's stopwords keep them, as search should)
ASKING_WORDS = frozenset(
    {
        "可以",
        "能",
        "能否",
        "能够",
        "可否",
        "是否",
        "会",
        "要",
        "需要",
        "应该",
        "有没有",
        "怎样",
        "怎么样",
        "一下",
        "can",
        "could",
        "should",
        "would",
        "need",
        "much",
        "many",
        "way",
        "possibl",
    }
)


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
        self,
        max_sentences: int = 3,
        min_coverage: float = 0.34,
        max_chars: int = 500,
        relative: float = 0.75,
        **_: Any,
    ) -> None:
        self.max_sentences = max_sentences
        self.min_coverage = min_coverage
        self.relative = relative  # quote sentences scoring at least this share of the best one
        self._planned: tuple[str, list[tuple[int, int, str]]] | None = None
        self.max_chars = max_chars
        self._tokenize = make_tokenizer()

    def plan(self, question: str, contexts: Sequence[ContextBlock]) -> list[tuple[int, int, str]]:
        """The sentences to quote, as (block n, position, sentence) in reading order; [] = not found.

        A sentence counts by how much of the question it covers, each question term weighted by
        its length (longer Chinese words say more) and by how rare it is among the retrieved
        sentences: a term every passage has (农业保险 in an insurance regulation, the title's words)
        says little about which sentence answers, the rare one (解除) says which does. Nothing is
        quoted when most of the question appears nowhere in the passages ("How do I delete a
        document?" against a law corpus that only mentions documents).
        """
        import math

        q = set(self._tokenize(question)) - ASKING_WORDS
        candidates: list[tuple[int, int, str, set[str]]] = []
        for block in contexts:
            for pos, sent in enumerate(split_sentences(block.text)):
                if sent.rstrip().endswith(("?", "？")):
                    continue  # a question (an FAQ heading, a quoted query) is not an answer
                candidates.append((block.n, pos, sent, set(self._tokenize(f"{block.title} {sent}"))))
        if not q or not candidates:
            return []
        present = set().union(*(c[3] for c in candidates)) & q
        if sum(_weight(t) for t in present) <= 0.5 * sum(_weight(t) for t in q):
            return []
        n = len(candidates)
        df = {t: sum(t in c[3] for c in candidates) for t in q}
        # Terms missing from every passage weigh as if they were in one: they lower every
        # sentence's coverage alike instead of swamping it.
        weight = {t: _weight(t) * math.log((n + 1) / (max(df[t], 1) + 0.5)) for t in q}
        total = sum(weight.values()) or 1.0
        scored = sorted(
            (
                (sum(weight[t] for t in q & toks) / total + 0.05 / bn, bn, pos, sent)
                for bn, pos, sent, toks in candidates
            ),
            key=lambda s: -s[0],
        )
        if scored[0][0] < self.min_coverage:
            return []
        best = scored[0][0]
        chosen: list[tuple[float, int, int, str]] = []
        for s in scored[: self.max_sentences * 4]:
            if s[0] < self.relative * best or len(chosen) == self.max_sentences:
                break
            if not any(_similar(s[3], c[3]) for c in chosen):
                chosen.append(s)
        chosen.sort(key=lambda s: (s[1], s[2]))
        out, length = [], 0
        for i, (_, bn, pos, sent) in enumerate(chosen):
            if i and length + len(sent) > self.max_chars:
                break
            length += len(sent)
            out.append((bn, pos, sent))
        return out

    def select_contexts(self, question: str, contexts: Sequence[ContextBlock]) -> list[ContextBlock]:
        """Only the passages the answer quotes, so they are numbered from [1] (``answer_question``
        renumbers them); the plan is kept for ``generate`` on those same passages."""
        plan = self.plan(question, contexts)
        used = sorted({bn for bn, _, _ in plan})
        self._planned = (question, [(used.index(bn) + 1, pos, sent) for bn, pos, sent in plan])
        by_n = {b.n: b for b in contexts}
        return [by_n[n] for n in used] if used else list(contexts)

    def generate(self, question: str, contexts: Sequence[ContextBlock]) -> Iterator[str]:
        lang = "zh" if language_of(question) != "en" else "en"
        planned = getattr(self, "_planned", None)
        self._planned = None
        plan = planned[1] if planned and planned[0] == question else self.plan(question, contexts)
        if not plan:
            yield NOT_FOUND[lang]
            return
        for i, (n, _, sent) in enumerate(plan):
            yield f"{sent}[{n}]" if lang == "zh" else ("" if i == 0 else " ") + f"{sent} [{n}]"


generators.add("extractive", ExtractiveGenerator)
