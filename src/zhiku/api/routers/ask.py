"""``POST /kbs/{kb}/ask``: an answer with numbered citations, whole or as server-sent events."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from zhiku.api import answering, sse
from zhiku.api.deps import KBDep
from zhiku.api.errors import BUG, error_body, zhiku_error_body
from zhiku.api.rerank_settings import reranker_of
from zhiku.api.routers.conversations import store_of
from zhiku.api.routers.documents import display_name, named_documents
from zhiku.api.routers.search import search_hits
from zhiku.api.schemas import AskRequest
from zhiku.errors import ZhikuError
from zhiku.generate.conversation import follow_up_query
from zhiku.store.conversations import Turn as StoredTurn
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
def ask(body: AskRequest, handle: KBDep) -> Any:
    # Retrieval happens before the response starts, so a bad method or an unknown KB is still a
    # plain JSON error with its status code, streaming or not.
    store = store_of(handle) if body.conversation else None
    if store is not None and body.conversation:
        history = store.history(body.conversation)  # 404 for an unknown conversation, before anything
    else:
        history = [(t.question, t.answer) for t in body.history or []]
    generator = answering.make_generator(handle)
    follow = follow_up_query(generator, body.question, history)
    if follow.warning:
        log.warning("%s", follow.warning)
    t0 = time.perf_counter()
    notes: list[str] = []
    parts: list[str] = []
    method, hits = search_hits(handle, follow.query, body.k, body.method, body.filter, notes, parts)
    retrieve_s = round(time.perf_counter() - t0, 4)

    def finished(result: Answer) -> dict[str, Any]:
        result.timings["retrieve_s"] = retrieve_s
        out = answering.answer_json(handle.name, result, method)
        out.update(question=body.question, query=follow.query, reranker=reranker_of(hits))
        out.update(notes=notes, parts_used=parts)  # a fusion whose part is not ready says so
        if store is not None and body.conversation:
            names = {r["id"]: r["name"] for r in named_documents(handle)}  # as the document table says
            cites = [
                {**c, "name": names.get(c["doc_id"]) or display_name(c["source"], handle.uploads)}
                for c in out["citations"]
            ]
            c = store.add_turn(
                body.conversation,
                StoredTurn(body.question, follow.query, result.text, cites, out["llm_error"], method),
            )
            out["conversation"] = c.to_json()
        return out

    if not body.stream:
        return JSONResponse(finished(answering.answer(handle, follow.query, hits, generator)))

    def events() -> Iterator[str]:
        if follow.rewritten:
            yield sse.event({"query": follow.query}, "query")
        try:
            for item in answering.stream(handle, follow.query, hits, generator):
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
