"""Documents: upload (ingested by a background job), list, show with chunks, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from zhiku.api.deps import KBDep, KBHandle, require_write, state, write_stream
from zhiku.api.errors import error_response, error_responses
from zhiku.api.jobs import job_location, job_responses
from zhiku.api.uploads import stage, unstage
from zhiku.errors import NotFoundError, UsageError
from zhiku.types import DocumentInfo

router = APIRouter(tags=["documents"])


def doc_json(d: DocumentInfo, uploads: Path, root: str = "") -> dict[str, Any]:
    return {
        "id": d.id,
        "path": d.source,
        "name": display_name(d.source, uploads, root),
        "title": d.title,
        "format": d.format,
        "chars": d.chars,
        "chunks": d.n_chunks,
        "ingested_at": d.ingested_at,
    }


def display_name(source: str, uploads: Path, root: str = "") -> str:
    """An uploaded file by the name it was uploaded as; a file ingested from a folder on the server
    by its path under that folder (``root``: see ``ingest_root``), not the server's full path."""
    prefix = str(uploads) + "/"
    if source.startswith(prefix):
        return source[len(prefix) :]
    if root and source.startswith(root + "/"):
        return source[len(root) + 1 :]
    return source


def ingest_root(sources: list[str], uploads: Path) -> str:
    """The folder the server-side documents were ingested from: the deepest folder holding them all.

    The catalog keeps full paths only; for ``zhiku ingest ./laws`` this is ``…/laws`` (or the folder
    of the one file), so the table shows ``民法典.md`` or ``zh/条例.md`` instead of ``/srv/…``.
    """
    import os

    local = [s for s in sources if not s.startswith(str(uploads) + "/")]
    if not local:
        return ""
    common = os.path.commonpath(local) if len(local) > 1 else os.path.dirname(local[0])
    if common in local:  # one file ingested twice under one path: its folder
        common = os.path.dirname(common)
    return "" if common in ("", "/") else common


def named_documents(handle: KBHandle) -> list[dict[str, Any]]:
    with handle.read() as kb:
        docs = kb.documents()
    # Resolved once: per row, ``handle.uploads`` (a resolve(), a few lstat calls) was most of the
    # 43 ms CPU a listing of the 1,103 laws took (issue 28: every delete of the load looks one up).
    uploads = handle.uploads
    root = ingest_root([d.source for d in docs], uploads)
    return [doc_json(d, uploads, root) for d in docs]


def matching(rows: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    """Rows whose name or title contains ``q`` (any case), exact matches first."""
    needle = q.strip().casefold()
    hits = [r for r in rows if needle in r["name"].casefold() or needle in r["title"].casefold()]
    exact = {r["id"] for r in hits if needle in (r["name"].casefold(), r["title"].casefold())}
    return sorted(hits, key=lambda r: (r["id"] not in exact, r["name"]))


@router.get("/kbs/{kb}/documents")
def list_documents(
    handle: KBDep,
    response: Response,
    q: Annotated[
        str | None,
        Query(max_length=500, description="only documents whose name or title contains this (any case)"),
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="at most this many")] = None,
) -> list[dict[str, Any]]:
    """The documents, by name; ``X-Total-Count`` says how many match before paging."""
    rows = named_documents(handle)
    if q and q.strip():
        rows = matching(rows, q)
    response.headers["X-Total-Count"] = str(len(rows))
    return rows[offset : None if limit is None else offset + limit]


@router.post(
    "/kbs/{kb}/documents",
    status_code=202,
    dependencies=[Depends(require_write)],
    responses=job_responses("the ingest job") | error_responses(415),
)
def upload_documents(
    request: Request,
    handle: KBDep,
    files: Annotated[list[UploadFile], File(description="one or more files: txt, md, html, pdf, docx")],
    wait: Annotated[bool, Query(description="answer when the ingest is done instead of at once")] = False,
) -> JSONResponse:
    """Staged at once, then ingested by the KB's write stream (``api/writer.py``): with the other
    uploads and deletes that arrive meanwhile, in one writer session and one index build."""
    st = state(request)
    sent = [(f.filename or "", f.file) for f in files]
    folder, staged, refused = stage(handle.uploads, sent, st.settings.max_upload_bytes)
    refusals = [{"file": r.name, "error": r.error} for r in refused]
    op = {
        "kind": "upload",
        "folder": str(folder),
        "staged": [{"name": s.name, "path": str(s.path), "digest": s.digest} for s in staged],
        "refused": refusals,
    }
    try:
        job = write_stream(request, handle).submit("ingest", op)
    except BaseException:
        unstage(folder)
        raise
    if wait:
        st.jobs.join(job)
        return JSONResponse(job.to_json(), status_code=200)
    # The refused files are known before the job starts: say so at once, and again in its result.
    return JSONResponse(
        {**job.to_json(), "refused": refusals},
        status_code=202,
        headers={"Location": job_location(handle.name, job.id)},
    )


def _document(kb: Any, doc_id: str) -> DocumentInfo:
    try:
        return kb.document(doc_id)
    except NotFoundError as e:
        raise NotFoundError(e.message, f"See GET /kbs/{kb.name}/documents for the ids") from None


@router.get("/kbs/{kb}/documents/{doc_id}")
def show_document(
    doc_id: str,
    handle: KBDep,
    chunks: Annotated[bool, Query(description="include the chunks with their offsets")] = True,
    highlight: Annotated[
        str | None,
        Query(pattern=r"^\d+-\d+$", description="a span START-END to mark, as in a citation's start and end"),
    ] = None,
) -> dict[str, Any]:
    with handle.read() as kb:
        d = _document(kb, doc_id)
        text = kb.document_text(d.id)
        parts = kb.chunks_of(d.id) if chunks else []
    out = next((r for r in named_documents(handle) if r["id"] == d.id), doc_json(d, handle.uploads))
    out["text"] = text
    out["chunk_count"] = d.n_chunks
    out["chunks"] = [
        {
            "id": c.id,
            "ord": c.ord,
            "start": c.start,
            "end": c.end,
            "heading": c.heading,
            "page": c.page,
            "text": c.text,
        }
        for c in parts
    ]
    if highlight:
        start, end = (int(x) for x in highlight.split("-"))
        if start > end or end > len(text):
            raise UsageError(
                f"highlight {highlight} is outside the document ({len(text)} characters)",
                "Use the start and end of a citation or hit",
            )
        out["highlight"] = {"start": start, "end": end, "text": text[start:end]}
    return out


def _delete(
    request: Request, handle: KBHandle, rows: list[dict[str, Any]], body: dict[str, Any], wait: bool
) -> JSONResponse:
    """Queue a delete in the KB's write stream. When nothing else is queued it runs at once and the
    answer (200) says it is done; behind a running ingest it is answered 202 with its job (not 423:
    the client need not retry), or 200 once done with ``wait=true``."""
    st = state(request)
    stream = write_stream(request, handle)
    behind = not stream.idle() or handle.write_lock.locked()  # an ingest, or a settings change
    # A file we stored is ours to remove; a path on the server is not.
    unlink = [r["path"] for r in rows if Path(r["path"]).parent == handle.uploads]
    job = stream.submit("delete", {"kind": "delete", "ids": [r["id"] for r in rows], "unlink": unlink})
    if behind and not wait:
        return JSONResponse(
            {**job.to_json(), **body},
            status_code=202,
            headers={"Location": job_location(handle.name, job.id)},
        )
    st.jobs.join(job)
    if job.state == "failed":
        error = job.error or {"code": "internal", "message": "the delete failed"}
        return error_response(job.http_status or 500, error["code"], error["message"])
    return JSONResponse(body, status_code=200)


def delete_responses() -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": "deleted (from the catalog and every index)"},
        202: {"description": "queued behind a running ingest: the job, to follow at /kbs/{kb}/jobs/{id}"},
    }


_WAIT_DELETE = Query(description="answer when the delete is done, even behind a running ingest")


@router.delete(
    "/kbs/{kb}/documents/{doc_id}", dependencies=[Depends(require_write)], responses=delete_responses()
)
def delete_document(
    doc_id: str, request: Request, handle: KBDep, wait: Annotated[bool, _WAIT_DELETE] = False
) -> JSONResponse:
    with handle.read() as kb:
        d = _document(kb, doc_id)
        sources = [x.source for x in kb.documents()]
    # Its row as the listing names it, without making the listing's other rows: building all 1,103
    # rows of the laws KB per delete was ~10% of the server's CPU in the Locust mix (py-spy).
    uploads = handle.uploads
    row = doc_json(d, uploads, ingest_root(sources, uploads))
    return _delete(request, handle, [row], {"deleted": row}, wait)


class DeleteDocuments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=10_000, description="document ids, as listed with ?q=")


@router.post(
    "/kbs/{kb}/documents/delete", dependencies=[Depends(require_write)], responses=delete_responses()
)
def delete_documents(
    body: DeleteDocuments, request: Request, handle: KBDep, wait: Annotated[bool, _WAIT_DELETE] = False
) -> JSONResponse:
    """Delete several documents in one change (one rebuild): the page lists what a title or file
    name matches (``GET …/documents?q=``), asks, then sends the ids."""
    rows = {r["id"]: r for r in named_documents(handle)}
    missing = [i for i in body.ids if i not in rows]
    if missing:
        raise NotFoundError(
            f"no document {missing[0]!r} in knowledge base {handle.name!r}",
            f"See GET /kbs/{handle.name}/documents for the ids",
        )
    chosen = [rows[i] for i in dict.fromkeys(body.ids)]
    return _delete(request, handle, chosen, {"deleted": chosen}, wait)
