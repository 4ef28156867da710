"""Answers for the API: the facade's ``KnowledgeBase.answer``, streamed piece by piece when asked.

Retrieval runs under the KB's read lock (``search_hits``); generation, the slow part, runs outside
it through the same facade call the CLI uses. Streaming runs that call in a worker thread and
forwards its ``on_token`` pieces, so a streamed answer ends with exactly the citations a
non-streamed one has.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from zhiku.api.deps import KBHandle
from zhiku.generate.base import Generator
from zhiku.types import Answer, Citation, Hit

if TYPE_CHECKING:
    from zhiku.service import KnowledgeBase


def make_generator(handle: KBHandle) -> Generator:
    # One per request: generators keep per-call state (a tokenizer, an HTTP client) that need not
    # be shared between threads.
    with handle.read() as kb:
        return kb.generator()


def _reader(handle: KBHandle) -> KnowledgeBase:
    with handle.read() as kb:
        return kb  # answering touches no catalog or index, so it needs no read lock


def answer(handle: KBHandle, question: str, hits: Sequence[Hit], generator: Generator) -> Answer:
    return _reader(handle).answer(question, hits, generator)


def stream(handle: KBHandle, question: str, hits: Sequence[Hit], generator: Generator) -> Iterator[str | Answer]:
    """The answer's text in pieces, then the ``Answer`` itself; raises what generating raised."""
    kb = _reader(handle)
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            result = kb.answer(question, hits, generator, on_token=lambda p: pieces.put(("token", p)))
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
    return {**asdict(c), "url": f"/kbs/{kb}/documents/{c.doc_id}?highlight={c.start}-{c.end}"}


def answer_json(kb: str, a: Answer, method: str) -> dict[str, Any]:
    return {
        "question": a.question, "answer": a.text, "found": a.found, "generator": a.generator,
        "method": method,
        "timings": a.timings, "citations": [citation_json(kb, c) for c in a.citations],
        "invalid_citations": list(a.invalid_citations),
    }
