"""``POST /kbs/{kb}/search``: ranked hits of one method, in the CLI's JSON shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from zhiku.api.deps import KBDep, KBHandle
from zhiku.api.schemas import PathFilter, SearchRequest
from zhiku.cli.common import hit_json
from zhiku.types import Hit

router = APIRouter(tags=["search"])

#: how many hits a filtered search fetches before filtering (it keeps the best k that pass)
FILTER_DEPTH = 200


def search_hits(handle: KBHandle, query: str, k: int, method: str | None,
                where: PathFilter | None) -> tuple[str, list[Hit]]:
    """(the method used, its hits): the one search path of search, ask and chat."""
    with handle.read() as kb:
        name = method or kb.default_method()
        if where is None or not (where.path_prefix or where.path_contains):
            return name, kb.search(query, k=k, method=name)
        hits = kb.search(query, k=max(k, FILTER_DEPTH), method=name)
    uploads = str(handle.uploads) + "/"
    prefix, contains = where.path_prefix, where.path_contains

    def keep(h: Hit) -> bool:
        source = h.doc.source if h.doc else ""
        relative = source[len(uploads):] if source.startswith(uploads) else source
        if prefix and not (source.startswith(prefix) or relative.startswith(prefix)):
            return False
        return not contains or contains in source

    return name, [h for h in hits if keep(h)][:k]


@router.post("/kbs/{kb}/search")
def search(body: SearchRequest, handle: KBDep) -> dict[str, Any]:
    method, hits = search_hits(handle, body.query, body.k, body.method, body.filter)
    return {"kb": handle.name, "query": body.query, "method": method,
            "hits": [hit_json(i, h) for i, h in enumerate(hits, start=1)]}
