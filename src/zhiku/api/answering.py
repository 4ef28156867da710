"""Answers for the API: a turn of the facade's ``Chat`` (``kb/chat.py``), streamed piece by piece
when asked.

The follow-up is condensed outside any lock (an LLM call); retrieval runs under the KB's read lock;
generation, the slow part, runs outside it through the same facade call the CLI uses. Streaming
runs that call in a worker thread and forwards its ``on_token`` pieces, so a streamed answer ends
with exactly the citations a non-streamed one has. When the LLM fails, the answer holds the
retrieved passages and a reason meant for whoever runs the server (``keep_passages``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from zhiku.api.deps import KBHandle
from zhiku.api.schemas import PathFilter
from zhiku.service import Chat, Retrieved, llm_error_of
from zhiku.types import Answer, Citation, Where

log = logging.getLogger("zhiku.api")


def open_chat(
    handle: KBHandle, conversation: str | None = None, history: Sequence[tuple[str, str]] = ()
) -> Chat:
    # One per request: generators keep per-call state (a tokenizer, an HTTP client) that need not
    # be shared between threads. An unknown conversation is a 404 here, before anything else.
    with handle.read() as kb:
        return kb.chat(conversation=conversation, history=history, keep_passages=True)


def retrieve(
    handle: KBHandle, chat: Chat, question: str, k: int, method: str | None, where: PathFilter | None
) -> Retrieved:
    """Condense (outside the lock), then retrieve under the read lock."""
    follow = chat.condense(question)
    if follow.warning:
        log.warning("%s", follow.warning)
    with handle.read() as kb:
        filt = Where(where.path_prefix, where.path_contains) if where else None
        return chat.retrieve(follow, k, method, filt, kb=kb)


def answer(chat: Chat, turn: Retrieved, on_token: Callable[[str], None] | None = None) -> Answer:
    result = chat.answer(turn, on_token)
    result.timings["retrieve_s"] = turn.timings["retrieve_s"]
    return result


def stream(chat: Chat, turn: Retrieved) -> Iterator[str | Answer]:
    """The answer's text in pieces, then the ``Answer`` itself; raises what generating raised
    (except an LLM failure: then the ``Answer`` holds the passages and the reason)."""
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            pieces.put(("answer", answer(chat, turn, lambda p: pieces.put(("token", p)))))
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
