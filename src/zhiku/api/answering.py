"""Answers for the API: the facade's ``KnowledgeBase.answer``, streamed piece by piece when asked.

Retrieval runs under the KB's read lock (``search_hits``); generation, the slow part, runs outside
it through the same facade call the CLI uses. Streaming runs that call in a worker thread and
forwards its ``on_token`` pieces, so a streamed answer ends with exactly the citations a
non-streamed one has. When the LLM fails, the answer holds the retrieved passages and a reason
meant for whoever runs the server.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zhiku.api.deps import KBHandle
from zhiku.errors import BackendError, ConfigError, DependencyMissingError, ZhikuError
from zhiku.generate.base import ContextBlock, Generator
from zhiku.types import Answer, Citation, Hit

if TYPE_CHECKING:
    from zhiku.service import KnowledgeBase

log = logging.getLogger("zhiku.api")


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


def make_generator(handle: KBHandle) -> Generator:
    # One per request: generators keep per-call state (a tokenizer, an HTTP client) that need not
    # be shared between threads.
    with handle.read() as kb:
        try:
            return kb.generator()
        except LLM_FAILURES as e:  # e.g. no model named: answer with the passages, say why
            return BrokenGenerator(e, kb.config.generator.kind)


def _reader(handle: KBHandle) -> KnowledgeBase:
    with handle.read() as kb:
        return kb  # answering touches no catalog or index, so it needs no read lock


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


@dataclass(frozen=True)
class PassagesAnswer(Answer):
    """An answer without generated text: the LLM failed, for the reason in ``llm_error``."""

    llm_error: str = ""


def llm_error_of(a: Answer) -> str | None:
    return a.llm_error if isinstance(a, PassagesAnswer) else None


def answer(handle: KBHandle, question: str, hits: Sequence[Hit], generator: Generator) -> Answer:
    t = time.perf_counter()
    try:
        return _reader(handle).answer(question, hits, generator)
    except LLM_FAILURES as e:
        result = passages_answer(question, hits, generator, e)
        result.timings["generate_s"] = round(time.perf_counter() - t, 4)
        return result


def stream(
    handle: KBHandle, question: str, hits: Sequence[Hit], generator: Generator
) -> Iterator[str | Answer]:
    """The answer's text in pieces, then the ``Answer`` itself; raises what generating raised
    (except an LLM failure: then the ``Answer`` holds the passages and the reason)."""
    kb = _reader(handle)
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        t = time.perf_counter()
        try:
            try:
                result = kb.answer(question, hits, generator, on_token=lambda p: pieces.put(("token", p)))
            except LLM_FAILURES as e:
                result = passages_answer(question, hits, generator, e)
                result.timings["generate_s"] = round(time.perf_counter() - t, 4)
            pieces.put(("answer", result))
        except BaseException as e:  # handed to the streaming thread, which raises it there
            pieces.put(("error", e))

    threading.Thread(target=run, name="zhiku-answer", daemon=True).start()
    while True:
        kind, value = pieces.get()
        if kind == "token":
            yield value
        elif kind == "answer":
            yield value
            return
        else:
            raise value


def citation_json(kb: str, c: Citation) -> dict[str, Any]:
    from urllib.parse import quote

    # A URL, so percent-encoded like the Location headers (a KB may be called 知识库).
    return {**asdict(c), "url": f"/kbs/{quote(kb, safe='')}/documents/{c.doc_id}?highlight={c.start}-{c.end}"}


def answer_json(kb: str, a: Answer, method: str) -> dict[str, Any]:
    """``llm_error``: when set, the language model failed and ``citations`` are the passages."""
    return {
        "question": a.question,
        "answer": a.text,
        "found": a.found,
        "generator": a.generator,
        "method": method,
        "llm_error": llm_error_of(a),
        "invalid_citations": list(a.invalid_citations),
        "scoring": a.scoring or None,  # the offline answerer's: "dense+lexical" or "lexical"
        "timings": a.timings,
        "citations": [citation_json(kb, c) for c in a.citations],
    }
