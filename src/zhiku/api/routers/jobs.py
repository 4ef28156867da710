"""Background jobs of a knowledge base: poll one, or follow it as server-sent events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from zhiku.api import sse
from zhiku.api.deps import KBDep, state

router = APIRouter(tags=["jobs"])


@router.get("/kbs/{kb}/jobs")
def list_jobs(request: Request, handle: KBDep) -> list[dict[str, Any]]:
    return [j.to_json() for j in state(request).jobs.list(handle.name)]


@router.get("/kbs/{kb}/jobs/{job_id}")
def show_job(job_id: str, request: Request, handle: KBDep) -> dict[str, Any]:
    return state(request).jobs.get(handle.name, job_id).to_json()


@router.get(
    "/kbs/{kb}/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "progress events, then one `done` event with the final job",
        }
    },
)
def job_events(
    job_id: str, request: Request, handle: KBDep, timeout: Annotated[float, Query(gt=0, le=86400)] = 3600
) -> StreamingResponse:
    jobs = state(request).jobs
    job = jobs.get(handle.name, job_id)

    def events() -> Iterator[str]:
        version = -1
        deadline = time.monotonic() + timeout
        while True:
            if job.finished_:
                yield sse.event(job.to_json(), "done")
                return
            if job.version != version:
                version = job.version
                yield sse.event(job.to_json(), "progress")
            elif time.monotonic() > deadline:
                return
            else:
                # A comment line each second: proxies keep the stream open, and a client that went
                # away is noticed at the next write.
                yield ": keep-alive\n\n"
            jobs.wait(job, version, 1.0)

    return StreamingResponse(events(), media_type="text/event-stream", headers=sse.STREAM_HEADERS)
