"""``routed``: a cheap query router between two methods of the same KB (``zhiku tune route``).

Short keyword-like queries ("劳动合同 试用期", "insurance claim deadline") go to ``keyword``;
natural questions (a question word or mark, or longer than ``max_chars``) go to ``question``. The
features cost nothing to compute; ``zhiku tune route`` only records a router when it beats the
best single method on held-out questions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import Field

from zhiku.retrieve.base import Method, MethodOptions, methods
from zhiku.types import Hit

_QUESTION_WORDS = re.compile(
    r"[?？]|什么|怎么|怎样|如何|哪|吗|呢|多少|多久|几|是否|为什么|为何|能否|可以|谁|"
    r"\b(?:who|what|when|where|which|why|how|is|are|does|do|can|should|must)\b",
    re.I,
)


def keyword_like(query: str, max_chars: int = 16) -> bool:
    """A search-box query: no question word or mark, and short (characters, spaces removed)."""
    compact = "".join(query.split())
    return len(compact) <= max_chars and not _QUESTION_WORDS.search(query)


class RoutedOptions(MethodOptions):
    keyword: str = Field("bm25", description="method for short keyword-like queries")
    question: str = Field("hybrid", description="method for natural questions")
    max_chars: int = Field(16, ge=1, description="longer queries count as questions")


@methods.register("routed")
class RoutedMethod(Method):
    kind = "routed"
    Options = RoutedOptions
    options: RoutedOptions
    indexed = False

    def parts(self) -> list[str]:
        return list(dict.fromkeys([self.options.keyword, self.options.question]))

    def route(self, query: str) -> str:
        return self.options.keyword if keyword_like(query, self.options.max_chars) else self.options.question

    def search(self, query: str, k: int) -> list[Hit]:
        return [h.with_(method=self.name) for h in self.ctx.resolve(self.route(query)).search(query, k)]

    def search_many(self, queries: list[str], k: int) -> Iterator[list[Hit]]:
        groups: dict[str, list[int]] = {}
        for i, q in enumerate(queries):
            groups.setdefault(self.route(q), []).append(i)
        out: dict[int, list[Hit]] = {}
        for name, idx in groups.items():
            found = self.ctx.resolve(name).search_many([queries[i] for i in idx], k)
            for i, hits in zip(idx, found, strict=True):
                out[i] = [h.with_(method=self.name) for h in hits]
        for i in range(len(queries)):
            yield out[i]
