"""What the facade's parts may use of the facade: its settings, catalog and layout, and the few
public calls that reach the other parts.

The parts (``methods``, ``indexes``, ``search``, ``chat``) are handed the ``KnowledgeBase`` but name
it by this protocol, so ``zhiku.kb`` never imports ``zhiku.service`` (the facade imports its parts,
not the other way round: no import circle, even under TYPE_CHECKING).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from zhiku.config import KBConfig
    from zhiku.generate.base import Generator
    from zhiku.retrieve.base import Method
    from zhiku.store.catalog import Catalog
    from zhiku.store.layout import KBLayout
    from zhiku.text.tokenize import Tokenizer
    from zhiku.types import Answer, Hit, Where


class Facade(Protocol):
    layout: KBLayout
    config: KBConfig
    catalog: Catalog
    tokenizer: Tokenizer
    notes: list[str]
    parts_used: list[str]

    @property
    def name(self) -> str: ...

    def language(self) -> str: ...

    def generator(self, llm: str | None = None, base_url: str | None = None) -> Generator: ...

    def ready_method(self, name: str, build: bool = ...) -> Method: ...

    def note(self, text: str) -> None: ...

    def recover(self) -> Any: ...

    def retrieve(
        self,
        question: str,
        k: int = ...,
        method: str | None = ...,
        where: Where | None = ...,
        rerank: str | None = ...,
        generator: Generator | None = ...,
    ) -> tuple[str, list[Hit]]: ...

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        generator: Generator | None = ...,
        on_token: Callable[[str], None] | None = ...,
        method: str = ...,
    ) -> Answer: ...
