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
from zhiku.api.routers.search import search_hits
from zhiku.api.schemas import AskRequest
from zhiku.errors import ZhikuError

router = APIRouter(tags=["ask"])
log = logging.getLogger("zhiku.api")


STREAMED = ("JSON; or with stream=true, `token` events ({\"text\"}) then one `done` event with the whole "
            "answer and its citations (or an `error` event)")


@router.post("/kbs/{kb}/ask",
             responses={200: {"content": {"text/event-stream": {}}, "description": STREAMED}})
def ask(body: AskRequest, handle: KBDep) -> Any:
    # Retrieval happens before the response starts, so a bad method or an unknown KB is still a
    # plain JSON error with its status code, streaming or not.
    t0 = time.perf_counter()
    method, hits = search_hits(handle, body.question, body.k, body.method, body.filter)
    retrieve_s = round(time.perf_counter() - t0, 4)
    generator = answering.make_generator(handle)
    if not body.stream:
        result = answering.answer(handle, body.question, hits, generator)
        result.timings["retrieve_s"] = retrieve_s
        return JSONResponse(answering.answer_json(handle.name, result, method))

    def events() -> Iterator[str]:
        try:
            for item in answering.stream(handle, body.question, hits, generator):
                if isinstance(item, str):
                    yield sse.event({"text": item}, "token")
                else:
                    item.timings["retrieve_s"] = retrieve_s
                    yield sse.event(answering.answer_json(handle.name, item, method), "done")
        except ZhikuError as e:
            yield sse.event(zhiku_error_body(e), "error")
        except Exception:
            log.exception("streaming an answer failed")
            yield sse.event(error_body("internal", BUG), "error")

    return StreamingResponse(events(), media_type="text/event-stream", headers=sse.STREAM_HEADERS)
