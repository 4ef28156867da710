"""Evaluation: run ``zhiku.eval`` on an uploaded zhiku-QA file, then fetch its report and chart.

A run is a background job (progress at ``/kbs/{kb}/jobs/{id}``); its files are kept under
``<kb>/evals/<id>/`` (results.json, report.md, chart.png) with the id of the job that made them.
It uses a ``KnowledgeBase`` object of its own, because an evaluation may compose fusions into its
KB's settings in memory, which the shared reader must never see.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from zhiku.api.deps import KBDep, KBHandle, require_write, state
from zhiku.api.errors import error_responses
from zhiku.api.jobs import Job, JobManager, PhaseProgress, job_location, job_responses
from zhiku.api.uploads import safe_filename
from zhiku.errors import DependencyMissingError, NotFoundError, UsageError

router = APIRouter(tags=["evaluation"])

_RUN_ID = re.compile(r"^[0-9a-f]{12}$")
DATASET_TYPES = (".jsonl", ".json")


def _runs(handle: KBHandle) -> Path:
    return handle.layout.root.resolve() / "evals"


def _run_dir(handle: KBHandle, run_id: str) -> Path:
    folder = _runs(handle) / run_id
    if not _RUN_ID.match(run_id) or not (folder / "results.json").exists():
        raise NotFoundError(
            f"no finished evaluation {run_id!r} in knowledge base {handle.name!r}",
            f"See GET /kbs/{handle.name}/evals, or the job's state at GET /kbs/{handle.name}/jobs/{run_id}",
        )
    return folder


@router.post(
    "/kbs/{kb}/eval",
    status_code=202,
    dependencies=[Depends(require_write)],
    responses=job_responses("the evaluation job (when done, its result links report and chart)")
    | error_responses(415),
)
def start_eval(
    request: Request,
    handle: KBDep,
    file: Annotated[
        UploadFile, File(description='zhiku QA, JSON Lines: {"question", "answer"|"evidence"|"doc"}')
    ],
    methods: Annotated[
        str | None, Form(description="comma-separated, e.g. bm25,dense,hybrid (default: what the KB has)")
    ] = None,
    k: Annotated[int, Form(ge=1, le=100)] = 10,
    limit: Annotated[
        int | None, Form(ge=1, description="evaluate a seeded sample of this many questions")
    ] = None,
    answers: Annotated[bool, Form(description="also generate and score an answer per question")] = False,
    wait: Annotated[bool, Query(description="answer when the evaluation is done")] = False,
) -> JSONResponse:
    name = safe_filename(file.filename or "dataset.jsonl")
    if Path(name).suffix.lower() not in DATASET_TYPES:
        from zhiku.errors import UnsupportedFormatError

        raise UnsupportedFormatError(
            f"{name}: an evaluation set must be a .jsonl (or .json) file",
            'Upload zhiku QA as JSON Lines, one {"question", "evidence"} per line',
        )
    st = state(request)
    data = file.file.read(st.settings.max_upload_bytes + 1)
    if not data.strip():
        raise UsageError(f"{name} is empty", "Upload a file with one question per line")
    names = [m.strip() for m in (methods or "").split(",") if m.strip()]

    def work(job: Job) -> dict[str, Any]:
        return _run(st.jobs, handle, job, name, data, names, k, limit, answers)

    job = st.jobs.submit(handle.name, "eval", work)
    if wait:
        st.jobs.join(job)
        return JSONResponse(job.to_json(), status_code=200)
    return JSONResponse(
        job.to_json(), status_code=202, headers={"Location": job_location(handle.name, job.id)}
    )


def _run(
    jobs: JobManager,
    handle: KBHandle,
    job: Job,
    name: str,
    data: bytes,
    methods: list[str],
    k: int,
    limit: int | None,
    answers: bool,
) -> dict[str, Any]:
    from zhiku.eval import load_dataset, run_eval, write_chart_png, write_report_md, write_results_json

    folder = _runs(handle) / job.id
    folder.mkdir(parents=True)
    try:
        dataset_path = folder / name
        dataset_path.write_bytes(data)
        dataset = load_dataset(dataset_path, name=Path(name).stem)
        kb = handle.open_private()
        try:
            progress = PhaseProgress(jobs, job, prefix="eval")
            command = f"POST /kbs/{handle.name}/eval ({name}, methods={','.join(methods) or 'auto'}, k={k})"
            report = run_eval(
                dataset,
                methods or None,
                k=k,
                kb=kb,
                limit=limit,
                answers=answers,
                progress=progress,
                build_progress=PhaseProgress(jobs, job),
                command=command,
            )
        finally:
            kb.close()
        chart = True
        try:
            write_chart_png(report, folder / "chart.png")
        except DependencyMissingError:
            chart = False  # the report and results stand without the picture
        write_report_md(report, folder / "report.md")
        write_results_json(report, folder / "results.json")  # last: its presence marks a finished run
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _summary(handle, job.id, report, chart)


def _summary(handle: KBHandle, run_id: str, report: Any, chart: bool) -> dict[str, Any]:
    base = f"/kbs/{handle.name}/evals/{run_id}"
    return {
        "id": run_id,
        "dataset": report.dataset,
        "k": report.k,
        "methods": [
            {
                "method": m.method,
                "metrics": {key: round(v, 4) for key, v in m.metrics.items()},
                "latency_ms_p50": round(m.latency_ms_p50, 3),
                "latency_ms_p95": round(m.latency_ms_p95, 3),
                "notes": m.notes,
            }
            for m in report.methods
        ],
        "results": base,
        "report": f"{base}/report",
        "chart": f"{base}/chart" if chart else None,
    }


@router.get("/kbs/{kb}/evals")
def list_evals(handle: KBDep) -> list[dict[str, Any]]:
    root = _runs(handle)
    runs = (
        sorted((p for p in root.glob("*/results.json")), key=lambda p: p.stat().st_mtime, reverse=True)
        if root.is_dir()
        else []
    )
    out = []
    for p in runs:
        results = json.loads(p.read_text(encoding="utf-8"))
        out.append(
            {
                "id": p.parent.name,
                "dataset": results.get("dataset"),
                "created": results.get("created"),
                "methods": [m.get("method") for m in results.get("methods", [])],
                "report": f"/kbs/{handle.name}/evals/{p.parent.name}/report",
            }
        )
    return out


@router.get("/kbs/{kb}/evals/{run_id}")
def show_eval(run_id: str, handle: KBDep) -> JSONResponse:
    folder = _run_dir(handle, run_id)
    return JSONResponse(json.loads((folder / "results.json").read_text(encoding="utf-8")))


@router.get("/kbs/{kb}/evals/{run_id}/report", response_class=PlainTextResponse)
def eval_report(run_id: str, handle: KBDep) -> PlainTextResponse:
    folder = _run_dir(handle, run_id)
    text = (folder / "report.md").read_text(encoding="utf-8")
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@router.get("/kbs/{kb}/evals/{run_id}/chart", response_class=FileResponse)
def eval_chart(run_id: str, handle: KBDep) -> FileResponse:
    chart = _run_dir(handle, run_id) / "chart.png"
    if not chart.exists():
        raise NotFoundError(
            f"evaluation {run_id} has no chart", "Install matplotlib on the server for charts"
        )
    return FileResponse(chart, media_type="image/png")
