"""Documents: upload (ingested by a background job), list, show with chunks, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from zhiku.api.deps import KBDep, KBHandle, require_write, state
from zhiku.api.jobs import FileProgress, Job, JobManager, PhaseProgress
from zhiku.api.uploads import Staged, ingested_now, place, settle, stage, unstage
from zhiku.errors import NotFoundError, UsageError
from zhiku.types import DocumentInfo

router = APIRouter(tags=["documents"])


def doc_json(d: DocumentInfo, uploads: Path) -> dict[str, Any]:
    return {
        "id": d.id, "path": d.source, "name": display_name(d.source, uploads), "title": d.title,
        "format": d.format, "chars": d.chars, "chunks": d.n_chunks, "ingested_at": d.ingested_at,
    }


def display_name(source: str, uploads: Path) -> str:
    """An uploaded file by the name it was uploaded as; anything else by its full path."""
    prefix = str(uploads) + "/"
    return source[len(prefix):] if source.startswith(prefix) else source


@router.get("/kbs/{kb}/documents")
def list_documents(handle: KBDep) -> list[dict[str, Any]]:
    with handle.read() as kb:
        docs = kb.documents()
    return [doc_json(d, handle.uploads) for d in docs]


@router.post("/kbs/{kb}/documents", status_code=202, dependencies=[Depends(require_write)],
             responses={202: {"description": "the ingest job, to follow at /kbs/{kb}/jobs/{id}"}})
def upload_documents(
    request: Request,
    handle: KBDep,
    files: Annotated[list[UploadFile], File(description="one or more files: txt, md, html, pdf, docx")],
    wait: Annotated[bool, Query(description="answer when the ingest is done instead of at once")] = False,
) -> JSONResponse:
    st = state(request)
    sent = [(f.filename or "", f.file) for f in files]
    folder, staged = stage(handle.uploads, sent, st.settings.max_upload_bytes)
    job = st.jobs.submit(handle.name, "ingest", lambda job: _ingest(st.jobs, handle, folder, staged, job))
    if wait:
        st.jobs.join(job)
        return JSONResponse(job.to_json(), status_code=200)
    return JSONResponse(job.to_json(), status_code=202,
                        headers={"Location": f"/kbs/{handle.name}/jobs/{job.id}"})


def _ingest(jobs: JobManager, handle: KBHandle, folder: Path, staged: list[Staged],
            job: Job) -> dict[str, Any]:
    try:
        with handle.write() as kb:
            placed = place(handle.uploads, staged)
            try:
                report, built = kb.ingest([p.final for p in placed], progress=FileProgress(jobs, job),
                                          prune=False, build_progress=PhaseProgress(jobs, job))
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
        "added": [named(s) for s in report.added], "updated": [named(s) for s in report.updated],
        "unchanged": [named(s) for s in report.unchanged],
        "failed": [{"file": named(s), "error": message(s, e)} for s, e in report.failed],
        "chunks": report.chunks, "seconds": round(report.seconds, 3),
        "built": dict(built.built), "not_built": dict(built.skipped),
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
    highlight: Annotated[str | None, Query(pattern=r"^\d+-\d+$", description="a span START-END to mark, "
                                           "as in a citation's start and end")] = None,
) -> dict[str, Any]:
    with handle.read() as kb:
        d = _document(kb, doc_id)
        text = kb.document_text(d.id)
        parts = kb.chunks_of(d.id) if chunks else []
    out = doc_json(d, handle.uploads)
    out["text"] = text
    out["chunks"] = [{"id": c.id, "ord": c.ord, "start": c.start, "end": c.end, "heading": c.heading,
                      "page": c.page, "text": c.text} for c in parts]
    if highlight:
        start, end = (int(x) for x in highlight.split("-"))
        if start > end or end > len(text):
            raise UsageError(f"highlight {highlight} is outside the document ({len(text)} characters)",
                             "Use the start and end of a citation or hit")
        out["highlight"] = {"start": start, "end": end, "text": text[start:end]}
    return out


@router.delete("/kbs/{kb}/documents/{doc_id}", dependencies=[Depends(require_write)])
def delete_document(doc_id: str, handle: KBDep) -> dict[str, Any]:
    with handle.write(wait=False) as kb:
        d = _document(kb, doc_id)
        kb.delete(d.id)
    source = Path(d.source)
    if source.parent == handle.uploads:  # a file we stored is ours to remove; a path on the server is not
        source.unlink(missing_ok=True)
    return {"deleted": doc_json(d, handle.uploads)}
