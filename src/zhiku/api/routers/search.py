"""``POST /kbs/{kb}/search``: ranked hits of one method, in the CLI's JSON shape."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter

from zhiku.api import lanes
from zhiku.api.deps import KBDep, KBHandle
from zhiku.api.rerank_settings import reranker_of
from zhiku.api.schemas import PathFilter, SearchRequest
from zhiku.types import Hit, Where

router = APIRouter(tags=["search"])


def search_hits(
    handle: KBHandle,
    query: str,
    k: int,
    method: str | None,
    where: PathFilter | None,
    notes: list[str] | None = None,
    parts_used: list[str] | None = None,
) -> tuple[str, list[Hit]]:
    """(the method used, its hits): the one search path of search, ask and chat. ``notes`` receives
    what the reader should know (a part of a fusion not ready yet), ``parts_used`` the indexed
    methods that answered."""
    with handle.read() as kb:
        filt = Where(where.path_prefix, where.path_contains) if where else None
        hits = kb.search(query, k=k, method=method, where=filt)
        if notes is not None:
            notes.extend(kb.notes)
        if parts_used is not None:
            parts_used.extend(kb.parts_used)
        return method or kb.default_method(), hits


@router.post("/kbs/{kb}/search")
async def search(body: SearchRequest, handle: KBDep) -> dict[str, Any]:
    # In the KB's CPU lane unless a method or its reranker may wait on a server (``lanes.py``).
    cpu = lanes.cpu_bound(handle.settings(), answers=False)
    return await lanes.run(partial(search_json, body, handle), handle.name, cpu)


def search_json(body: SearchRequest, handle: KBHandle) -> dict[str, Any]:
    notes: list[str] = []
    parts: list[str] = []
    method, hits = search_hits(handle, body.query, body.k, body.method, body.filter, notes, parts)
    return {
        "kb": handle.name,
        "query": body.query,
        "method": method,
        "notes": notes,
        "parts_used": parts,
        "reranker": reranker_of(hits),
        "hits": [h.to_json(i) for i, h in enumerate(hits, start=1)],
    }
