"""``POST /kbs/{kb}/search``: ranked hits of one method, in the CLI's JSON shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from zhiku.api.deps import KBDep, KBHandle
from zhiku.api.schemas import PathFilter, SearchRequest
from zhiku.types import Hit, Where

router = APIRouter(tags=["search"])

def search_hits(handle: KBHandle, query: str, k: int, method: str | None,
                where: PathFilter | None) -> tuple[str, list[Hit]]:
    """(the method used, its hits): the one search path of search, ask and chat."""
    with handle.read() as kb:
        name = method or kb.default_method()
        filt = Where(where.path_prefix, where.path_contains) if where else None
        return name, kb.search(query, k=k, method=name, where=filt)


@router.post("/kbs/{kb}/search")
def search(body: SearchRequest, handle: KBDep) -> dict[str, Any]:
    method, hits = search_hits(handle, body.query, body.k, body.method, body.filter)
    return {"kb": handle.name, "query": body.query, "method": method,
            "hits": [h.to_json(i) for i, h in enumerate(hits, start=1)]}
