"""Answers for the API: the facade's ``answer_question``, streamed piece by piece when asked.

Citations are mapped from ``[n]`` in ``generate/answer.py`` for every backend; streaming runs that
same function in a worker thread and forwards its ``on_token`` pieces, so a streamed answer ends
with exactly the citations a non-streamed one has.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from zhiku.api.deps import KBHandle
from zhiku.generate.base import Generator
from zhiku.types import Answer, Citation, Hit


def make_generator(handle: KBHandle) -> Generator:
    from zhiku.generate.answer import make_generator as make

    with handle.read() as kb:
        config = kb.config.generator
    # One per request: generators keep per-call state (a tokenizer, an HTTP client) that need not
    # be shared between threads.
    return make(config)


def answer(question: str, hits: Sequence[Hit], generator: Generator) -> Answer:
    from zhiku.generate.answer import answer_question

    t = time.perf_counter()
    result = answer_question(question, hits, generator)
    result.timings["generate_s"] = round(time.perf_counter() - t, 4)
    return result


def stream(question: str, hits: Sequence[Hit], generator: Generator) -> Iterator[str | Answer]:
    """The answer's text in pieces, then the ``Answer`` itself; raises what generating raised."""
    from zhiku.generate.answer import answer_question

    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        t = time.perf_counter()
        try:
            result = answer_question(question, hits, generator, on_token=lambda p: pieces.put(("token", p)))
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
    return {
        "question": a.question, "answer": a.text, "found": a.found, "generator": a.generator,
        "method": method,
        "timings": a.timings, "citations": [citation_json(kb, c) for c in a.citations],
    }
