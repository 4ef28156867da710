"""A conversation with a KB, written once for every face: condense the follow-up → retrieve →
answer → store the turn.

``zhiku chat`` and ``zhiku ask``, the API's ``/kbs/{kb}/ask`` and ``/v1/chat/completions`` all go
through ``Chat``. Its steps are separate calls so a server can retrieve under its read lock and
generate outside it (``retrieve`` touches the catalog and the indexes; ``condense`` and ``answer``
only call the LLM); ``turn`` runs the four in a row. After the first question, an LLM generator
rewrites a follow-up ("它支持中文吗？") into a query that stands on its own; the extractive answerer
has no LLM to rewrite with, so its questions are searched as typed.

With ``keep_passages`` (the server's faces), an LLM that fails, or cannot even be made, still gives
an answer: the retrieved passages as its sources and, in ``llm_error``, a reason for whoever runs the
server. Without it (the CLI) the error is raised after retrieval, so the caller can show the
passages and exit with the error's code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from zhiku.errors import BackendError, ConfigError, DependencyMissingError, ZhikuError
from zhiku.generate.base import ContextBlock, Generator
from zhiku.generate.conversation import FollowUp, follow_up_query
from zhiku.types import Answer, Citation, Hit, Where

if TYPE_CHECKING:
    from zhiku.kb.core import Facade
    from zhiku.store.conversations import Conversation, ConversationStore

log = logging.getLogger("zhiku")

#: the failures of a language model (down, misconfigured, missing a package): the retrieved
#: passages are still worth showing, with the reason for whoever runs the server
LLM_FAILURES: tuple[type[ZhikuError], ...] = (BackendError, ConfigError, DependencyMissingError)


class BrokenGenerator(Generator):
    """Stands in for a generator that could not be made: generating raises why."""

    name = "unavailable"

    def __init__(self, error: ZhikuError, kind: str) -> None:
        self.error = error
        self.kind = kind

    def generate(self, question: str, contexts: Sequence[ContextBlock]) -> Iterator[str]:
        raise self.error

    def describe(self) -> str:
        return self.kind


@dataclass(frozen=True)
class PassagesAnswer(Answer):
    """An answer without generated text: the LLM failed, for the reason in ``llm_error``."""

    llm_error: str = ""


def llm_error_of(a: Answer) -> str | None:
    return a.llm_error if isinstance(a, PassagesAnswer) else None


def operator_reason(error: ZhikuError, generator: Generator) -> str:
    """One line for whoever runs the server: what failed, and where that is set up.

    The error's own hint speaks to a CLI user (``Pass --base-url``); a page or API user cannot pass
    flags, so the hint here names the settings (the page's Settings tab or zhiku.toml [generator])
    and the server's environment, where keys live.
    """
    what = error.message.rstrip(".")
    return (
        f"LLM {generator.describe()} failed ({what}); showing the retrieved passages. For the server's "
        "operator: check the generator under Settings (zhiku.toml [generator]), that the LLM server is "
        "up, and any key in the server's environment"
    )


def passages_answer(question: str, hits: Sequence[Hit], generator: Generator, error: ZhikuError) -> Answer:
    """The retrieved passages as the answer's sources, numbered from [1], with no generated text."""
    from zhiku.generate.answer import context_blocks

    citations = tuple(
        Citation(b.n, b.chunk_id, b.doc_id, b.source, b.title, b.heading, b.start, b.end, b.text)
        for b in context_blocks(hits)
    )
    log.warning("LLM failed, answering with passages: %s", error.one_line())
    return PassagesAnswer(
        question,
        "",
        citations,
        tuple(hits),
        False,
        generator.describe(),
        {},
        llm_error=operator_reason(error, generator),
    )


@dataclass
class Retrieved:
    """One turn after retrieval: what was asked, what was searched for, with what, and the hits."""

    question: str  # as the user typed it
    query: str  # what was searched for (the question itself unless it was rewritten)
    method: str
    hits: list[Hit]
    warning: str | None = None  # the rewrite failed: why
    notes: list[str] = field(default_factory=list)  # what the search wants its reader to know
    timings: dict[str, float] = field(default_factory=dict)
    parts_used: list[str] = field(default_factory=list)  # the indexed methods that answered

    @property
    def rewritten(self) -> bool:
        return self.query != self.question

    def contexts(self) -> list[ContextBlock]:
        """The retrieved passages as numbered blocks (what a failed answer still shows)."""
        from zhiku.generate.answer import context_blocks

        return context_blocks(self.hits)


class Chat:
    """The turns of one conversation with a KB, and the one way a turn is taken.

    ``conversation``: the id of a stored conversation (its turns are the history; new turns are
    stored there); else ``history`` ((query, answer) pairs, oldest first) is kept in memory.
    """

    def __init__(
        self,
        kb: Facade,
        generator: Generator | None = None,
        *,
        conversation: str | None = None,
        history: Sequence[tuple[str, str]] = (),
        keep_passages: bool = False,
    ) -> None:
        self.kb = kb
        self.keep_passages = keep_passages
        self.generator = generator if generator is not None else self._make_generator()
        self.conversation = conversation
        self.store: ConversationStore | None = None
        if conversation:
            from zhiku.store.conversations import ConversationStore

            self.store = ConversationStore.of_kb(kb.layout.root)
            history = self.store.history(conversation)  # an unknown conversation fails here, first
        self.history: list[tuple[str, str]] = list(history)

    def _make_generator(self) -> Generator:
        try:
            return self.kb.generator()
        except LLM_FAILURES as e:
            if not self.keep_passages:
                raise
            return BrokenGenerator(e, self.kb.config.generator.kind)  # answers with the passages

    # -- the steps ---------------------------------------------------------------------------------
    def condense(self, question: str) -> FollowUp:
        """What to search for: ``question`` rewritten to stand alone after the turns before (never
        raises for a failed rewrite: the answer can still be found for the question as typed)."""
        return follow_up_query(self.generator, question, self.history)

    def retrieve(
        self,
        follow: FollowUp,
        k: int = 5,
        method: str | None = None,
        where: Where | None = None,
        rerank: str | None = None,
        kb: Facade | None = None,
    ) -> Retrieved:
        """Search for the condensed query (under the caller's read lock, if it holds one; ``kb``:
        the reader that lock gave, when it may have been reopened since this chat began)."""
        kb = kb or self.kb
        t0 = time.perf_counter()
        used, hits = kb.retrieve(follow.query, k, method, where, rerank, self.generator)
        timings = {"retrieve_s": round(time.perf_counter() - t0, 4)}
        notes = list(kb.notes)
        parts = list(kb.parts_used)
        return Retrieved(follow.question, follow.query, used, hits, follow.warning, notes, timings, parts)

    def answer(self, turn: Retrieved, on_token: Callable[[str], None] | None = None) -> Answer:
        """Generate the answer from the retrieved passages (pieces go to ``on_token``)."""
        t = time.perf_counter()
        try:
            return self.kb.answer(turn.query, turn.hits, self.generator, on_token, turn.method)
        except LLM_FAILURES as e:
            if not self.keep_passages:
                raise
            result = passages_answer(turn.query, turn.hits, self.generator, e)
            result.timings["generate_s"] = round(time.perf_counter() - t, 4)
            return result

    def record(
        self, turn: Retrieved, answer: Answer, citations: list[dict[str, Any]] | None = None
    ) -> Conversation | None:
        """Remember the turn: the next follow-up is rewritten with it; stored in the conversation
        if there is one (``citations``: as the face shows them; by default the answer's own)."""
        if answer.text:
            self.history.append((turn.query, answer.text))
        if self.store is None or not self.conversation:
            return None
        from zhiku.store.conversations import Turn

        cites = citations if citations is not None else [asdict(c) for c in answer.citations]
        stored = Turn(turn.question, turn.query, answer.text, cites, llm_error_of(answer), turn.method)
        return self.store.add_turn(self.conversation, stored)

    def reset(self) -> None:
        """Forget the turns held in memory (a stored conversation keeps its turns)."""
        self.history.clear()

    # -- all four --------------------------------------------------------------------------------
    def turn(
        self,
        question: str,
        k: int = 5,
        method: str | None = None,
        where: Where | None = None,
        rerank: str | None = None,
        on_token: Callable[[str], None] | None = None,
        on_retrieved: Callable[[Retrieved], None] | None = None,
    ) -> tuple[Retrieved, Answer]:
        """Condense, retrieve, answer, record. ``on_retrieved`` sees the passages before generation
        starts, so a caller can still show them if the LLM fails (and this raises)."""
        retrieved = self.retrieve(self.condense(question), k, method, where, rerank)
        if on_retrieved is not None:
            on_retrieved(retrieved)
        result = self.answer(retrieved, on_token)
        result.timings.setdefault("retrieve_s", retrieved.timings["retrieve_s"])
        self.record(retrieved, result)
        return retrieved, result
