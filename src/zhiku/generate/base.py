"""The generator contract: turn a question and numbered context blocks into answer text.

One abstract method, ``generate``, yields the answer in pieces (a backend that cannot stream yields
it once). Citations are written in the text as ``[n]``, n being a context block's number; mapping
them back to documents is done once, in ``generate/answer.py``, for every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from zhiku.registry import Registry


@dataclass(frozen=True, slots=True)
class ContextBlock:
    n: int
    chunk_id: str
    doc_id: str
    text: str
    source: str
    title: str
    heading: str
    start: int
    end: int
    score: float
    page: int = 0
    location: str = ""  # "p. 3", "slide 2": how a citation names the page ("" without pages)


class Generator(ABC):
    name: ClassVar[str] = "generator"
    streams: ClassVar[bool] = False
    #: the context blocks as the last answer's prompt packed them (LLM generators; None elsewhere)
    last_packed: list[int] | None = None

    @abstractmethod
    def generate(self, question: str, contexts: Sequence[ContextBlock]) -> Iterator[str]:
        """Yield the answer text in pieces, citing context blocks as ``[n]``.

        With no relevant context, say so in the text and cite nothing.
        """

    def describe(self) -> str:
        return self.name

    @property
    def reads_meaning(self) -> bool:
        """Whether this generator scores passages with the KB's dense embedder (``use_embedder``):
        the offline answerer with ``dense = true``; no LLM does."""
        return False

    def use_embedder(self, embedder: Any) -> None:
        """Hand over the KB's dense embedder (None: it has none built); asked only when
        ``reads_meaning``."""
        return None  # a generator that reads no meaning keeps nothing


#: name -> factory(options: dict) -> Generator
generators: Registry[Callable[..., Generator]] = Registry("generator")
