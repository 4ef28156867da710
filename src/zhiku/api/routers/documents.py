"""Documents: upload (ingested by a background job), list, show with chunks, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from zhiku.api.deps import KBDep, KBHandle, require_write, state
from zhiku.api.errors import error_responses
from zhiku.api.jobs import FileProgress, Job, JobManager, PhaseProgress, job_location, job_responses
from zhiku.api.uploads import Staged, ingested_now, place, settle, stage, unstage
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
    root = ingest_root([d.source for d in docs], handle.uploads)
    return [doc_json(d, handle.uploads, root) for d in docs]


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
    st = state(request)
    sent = [(f.filename or "", f.file) for f in files]
    folder, staged, refused = stage(handle.uploads, sent, st.settings.max_upload_bytes)
    refusals = [{"file": r.name, "error": r.error} for r in refused]
    job = st.jobs.submit(
        handle.name, "ingest", lambda job: _ingest(st.jobs, handle, folder, staged, job, refusals)
    )
    if wait:
        st.jobs.join(job)
        return JSONResponse(job.to_json(), status_code=200)
    # The refused files are known before the job starts: say so at once, and again in its result.
    return JSONResponse(
        {**job.to_json(), "refused": refusals},
        status_code=202,
        headers={"Location": job_location(handle.name, job.id)},
    )


def _ingest(
    jobs: JobManager,
    handle: KBHandle,
    folder: Path,
    staged: list[Staged],
    job: Job,
    refused: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    try:
        with handle.write() as kb:
            placed = place(handle.uploads, staged)
            try:
                report, built = kb.ingest(
                    [p.final for p in placed],
                    progress=FileProgress(jobs, job),
                    prune=False,
                    build_progress=PhaseProgress(jobs, job),
                )
            except BaseException:
                # Whatever the catalog did not take in whole is taken out of uploads/ again.
                settle(placed, ingested_now(kb, placed))
                raise
            settle(placed, ingested_now(kb, placed))
    finally:
        unstage(folder)
    names = {str(p.final): p.staged.name for p in placed}

    def named(source: str) -> str:
        return names.get(source, source)

    def message(source: str, error: str) -> str:
        # Say "report.pdf", not the server's folder layout.
        return error.replace(source, named(source)).replace(str(Path(source).parent) + "/", "")

    result: dict[str, Any] = {
        "added": [named(s) for s in report.added],
        "updated": [named(s) for s in report.updated],
        "unchanged": [named(s) for s in report.unchanged],
        "duplicates": [{"file": named(s), "same_as": named(o)} for s, o in report.duplicates],
        "failed": [{"file": named(s), "error": message(s, e)} for s, e in report.failed],
        "chunks": report.chunks,
        "seconds": round(report.seconds, 3),
        "built": dict(built.built),
        "not_built": dict(built.skipped),
        "refused": refused or [],
    }
    if report.failed and not (report.added or report.updated or report.unchanged):
        reasons = "; ".join(f["error"] for f in result["failed"])
        result["_failed"] = {"code": "ingest_failed", "message": reasons}
    return result


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


@router.delete("/kbs/{kb}/documents/{doc_id}", dependencies=[Depends(require_write)])
def delete_document(doc_id: str, handle: KBDep) -> dict[str, Any]:
    shown = {r["id"]: r for r in named_documents(handle)}
    with handle.write(wait=False) as kb:
        d = _document(kb, doc_id)
        kb.delete(d.id)
    source = Path(d.source)
    if source.parent == handle.uploads:  # a file we stored is ours to remove; a path on the server is not
        source.unlink(missing_ok=True)
    return {"deleted": shown.get(d.id) or doc_json(d, handle.uploads)}


class DeleteDocuments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=10_000, description="document ids, as listed with ?q=")


@router.post("/kbs/{kb}/documents/delete", dependencies=[Depends(require_write)])
def delete_documents(body: DeleteDocuments, handle: KBDep) -> dict[str, Any]:
    """Delete several documents in one change (one rebuild): the page lists what a title or file
    name matches (``GET …/documents?q=``), asks, then sends the ids."""
    rows = {r["id"]: r for r in named_documents(handle)}
    missing = [i for i in body.ids if i not in rows]
    if missing:
        raise NotFoundError(
            f"no document {missing[0]!r} in knowledge base {handle.name!r}",
            f"See GET /kbs/{handle.name}/documents for the ids",
        )
    with handle.write(wait=False) as kb:
        kb.delete_documents_by_id(body.ids)
    for i in body.ids:
        source = Path(rows[i]["path"])
        if source.parent == handle.uploads:
            source.unlink(missing_ok=True)
    return {"deleted": [rows[i] for i in body.ids]}
