"""``POST /kbs/{kb}/ask``: an answer with numbered citations, whole or as server-sent events."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from zhiku.api import answering, lanes, sse
from zhiku.api.deps import KBDep, KBHandle
from zhiku.api.errors import BUG, error_body, zhiku_error_body
from zhiku.api.rerank_settings import reranker_of
from zhiku.api.routers.documents import display_name, named_documents
from zhiku.api.schemas import AskRequest
from zhiku.errors import ZhikuError
from zhiku.types import Answer

router = APIRouter(tags=["ask"])
log = logging.getLogger("zhiku.api")


STREAMED = (
    'JSON; or with stream=true, `token` events ({"text"}) then one `done` event with the whole '
    "answer and its citations (or an `error` event)"
)


@router.post(
    "/kbs/{kb}/ask", responses={200: {"content": {"text/event-stream": {}}, "description": STREAMED}}
)
async def ask(body: AskRequest, handle: KBDep) -> Any:
    # A whole answer by the offline answerer is CPU work: the KB's CPU lane (``lanes.py``). An
    # LLM's answer or a stream waits, so it keeps the default pool.
    cpu = not body.stream and lanes.cpu_bound(handle.settings(), answers=True)
    return await lanes.run(partial(answer_response, body, handle), handle.name, cpu)


def answer_response(body: AskRequest, handle: KBHandle) -> Any:
    # Retrieval happens before the response starts, so a bad method or an unknown KB is still a
    # plain JSON error with its status code, streaming or not.
    history = [(t.question, t.answer) for t in body.history or []]
    chat = answering.open_chat(handle, body.conversation, history)  # 404 for an unknown conversation
    turn = answering.retrieve(handle, chat, body.question, body.k, body.method, body.filter)

    def finished(result: Answer) -> dict[str, Any]:
        out = answering.answer_json(handle.name, result, turn.method)
        out.update(question=body.question, query=turn.query, reranker=reranker_of(turn.hits))
        out.update(notes=turn.notes, parts_used=turn.parts_used)  # a fusion whose part is not ready says so
        cites = None
        if body.conversation:
            names = {r["id"]: r["name"] for r in named_documents(handle)}  # as the document table says
            cites = [
                {**c, "name": names.get(c["doc_id"]) or display_name(c["source"], handle.uploads)}
                for c in out["citations"]
            ]
        c = chat.record(turn, result, cites)
        if c is not None:
            out["conversation"] = c.to_json()
        return out

    if not body.stream:
        return JSONResponse(finished(answering.answer(chat, turn)))

    def events() -> Iterator[str]:
        if turn.rewritten:
            yield sse.event({"query": turn.query}, "query")
        try:
            for item in answering.stream(chat, turn):
                if isinstance(item, str):
                    yield sse.event({"text": item}, "token")
                else:
                    yield sse.event(finished(item), "done")
        except ZhikuError as e:
            yield sse.event(zhiku_error_body(e), "error")
        except Exception:
            log.exception("streaming an answer failed")
            yield sse.event(error_body("internal", BUG), "error")

    return StreamingResponse(events(), media_type="text/event-stream", headers=sse.STREAM_HEADERS)
