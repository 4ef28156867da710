"""``zhiku tune`` as background jobs: offline questions, a query adapter, and the default chosen by
evidence (route), each with phase progress and, when done, its before/after table.

A run's reports (results.json, report.md, chart.png) go to ``<kb>/tune/runs/<job id>/validation/``
and are served under ``/kbs/{kb}/tune/runs/{id}/…``; the questions, models and settings a run
writes are the ones the CLI writes (``<kb>/tune/questions.jsonl``, ``models/<name>/``,
``zhiku.toml``), so the CLI and the page see each other's work. Every step goes through
``zhiku.tune.runs``, the code behind the CLI: the same validation, the same paired test before
anything becomes the default.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from zhiku.api.deps import KBDep, KBHandle, require_write, state
from zhiku.api.jobs import Job, JobManager, PhaseProgress, job_location, job_responses
from zhiku.errors import NotFoundError

router = APIRouter(tags=["tune"])

_RUN_ID = re.compile(r"^[0-9a-f]{12}$")


OfflineKind = Literal["ict", "keywords", "article"]
_KINDS: tuple[OfflineKind, ...] = ("ict", "keywords", "article")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuestionsRequest(_Strict):
    """Offline pseudo-questions (labelled as such), filtered and split by document."""

    sample: int | None = Field(None, ge=1, description="use this many sampled chunks (default all)")
    kinds: list[OfflineKind] = Field(default_factory=lambda: list(_KINDS), min_length=1)
    validation: float = Field(0.2, gt=0, lt=1, description="share of documents held out")
    filter: str = Field("bm25", max_length=100, description="method of the answerability filter, or 'none'")
    depth: int = Field(100, ge=1, le=1000)
    max_ties: int = Field(5, ge=2, le=1000)
    seed: int = Field(0, ge=0, description="random seed (a non-negative integer)")


class AdapterRequest(_Strict):
    base: str = Field(..., max_length=100, description="the vector method to adapt (e.g. dense)")
    kind: Literal["linear", "residual"] = "linear"
    name: str | None = Field(None, max_length=100, pattern=r"^[\w.\-]+$")
    epochs: int = Field(30, ge=1, le=500)
    max_train: int = Field(3000, ge=8, le=100_000)
    max_validation: int = Field(500, ge=1, le=100_000)
    seed: int = Field(0, ge=0, description="random seed (a non-negative integer)")


class RouteRequest(_Strict):
    methods: list[str] | None = Field(None, description="candidates (default: every built method)")


def _runs(handle: KBHandle) -> Path:
    return handle.layout.root.resolve() / "tune" / "runs"


def _submit(request: Request, handle: KBHandle, kind: str, work: Any, wait: bool) -> JSONResponse:
    st = state(request)
    job = st.jobs.submit(handle.name, kind, lambda job: work(st.jobs, job))
    if wait:
        st.jobs.join(job)
        return JSONResponse(job.to_json(), status_code=200)
    return JSONResponse(
        job.to_json(), status_code=202, headers={"Location": job_location(handle.name, job.id)}
    )


def _with_reports(handle: KBHandle, job: Job, info: dict[str, Any]) -> dict[str, Any]:
    """``info`` plus the run's results.json (its means: per-question rows stay in the file) and links."""
    folder = _runs(handle) / job.id / "validation"
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    for m in results.get("methods", []):
        m.pop("per_query", None)
    base = f"/kbs/{handle.name}/tune/runs/{job.id}"
    return {
        **info,
        "run": job.id,
        "results": results,
        "links": {
            "results": f"{base}/results",
            "report": f"{base}/report",
            "chart": f"{base}/chart" if (folder / "chart.png").exists() else None,
        },
    }


_WAIT = Annotated[bool, Query(description="answer when the job is done")]
_ACCEPTED = job_responses("the tune job")


@router.post(
    "/kbs/{kb}/tune/questions", status_code=202, dependencies=[Depends(require_write)], responses=_ACCEPTED
)
def tune_questions(
    body: QuestionsRequest, request: Request, handle: KBDep, wait: _WAIT = False
) -> JSONResponse:
    """Offline pseudo-questions for the KB's chunks (``zhiku tune questions``)."""
    from zhiku.tune import run_questions

    def work(jobs: JobManager, job: Job) -> dict[str, Any]:
        with handle.write() as kb:
            outcome = run_questions(
                kb,
                sample=body.sample,
                kinds=tuple(body.kinds),
                filter_method=None if body.filter == "none" else body.filter,
                depth=body.depth,
                max_ties=body.max_ties,
                validation=body.validation,
                seed=body.seed,
                steps=PhaseProgress(jobs, job, prefix="tune"),
            )
        return {"step": "questions", **outcome.info}

    return _submit(request, handle, "tune-questions", work, wait)


@router.post(
    "/kbs/{kb}/tune/adapter", status_code=202, dependencies=[Depends(require_write)], responses=_ACCEPTED
)
def tune_adapter(body: AdapterRequest, request: Request, handle: KBDep, wait: _WAIT = False) -> JSONResponse:
    """A query adapter on a built vector method (``zhiku tune adapter``); default only if it wins."""
    from zhiku.tune import run_adapter

    def work(jobs: JobManager, job: Job) -> dict[str, Any]:
        with handle.write() as kb:
            outcome = run_adapter(
                kb,
                body.base,
                kind=body.kind,
                name=body.name,
                epochs=body.epochs,
                max_train=body.max_train,
                max_validation=body.max_validation,
                out=_runs(handle) / job.id,
                seed=body.seed,
                steps=PhaseProgress(jobs, job, prefix="tune"),
                command=f"POST /kbs/{handle.name}/tune/adapter (base={body.base}, kind={body.kind})",
            )
        info = {k: v for k, v in outcome.info.items() if k != "manifest"}
        return _with_reports(handle, job, {"step": "adapter", **info})

    return _submit(request, handle, "tune-adapter", work, wait)


@router.post(
    "/kbs/{kb}/tune/route", status_code=202, dependencies=[Depends(require_write)], responses=_ACCEPTED
)
def tune_route(body: RouteRequest, request: Request, handle: KBDep, wait: _WAIT = False) -> JSONResponse:
    """The KB's default method, hybrid weights or a query router, chosen on validation."""
    from zhiku.tune import run_route

    def work(jobs: JobManager, job: Job) -> dict[str, Any]:
        with handle.write() as kb:
            outcome = run_route(
                kb,
                methods=[m.strip() for m in body.methods if m.strip()] if body.methods else None,
                out=_runs(handle) / job.id / "validation",
                steps=PhaseProgress(jobs, job, prefix="tune"),
            )
        return _with_reports(handle, job, {"step": "route", **outcome.info})

    return _submit(request, handle, "tune-route", work, wait)


@router.get("/kbs/{kb}/tune")
def tune_status(handle: KBDep) -> dict[str, Any]:
    """What the Tune panel shows: the questions there are, the methods an adapter can start from,
    the default and the route's evidence, and earlier runs."""
    from zhiku.tune import adapter_bases, question_files

    with handle.read() as kb:
        qpath, train, val = question_files(kb)
        questions = None
        if train.is_file() and val.is_file():
            questions = {
                "file": str(qpath),
                "train": _lines(train),
                "validation": _lines(val),
            }
        bases = adapter_bases(kb)
        default, route = kb.default_method(), kb.config.route
    runs = []
    root = _runs(handle)
    if root.is_dir():
        for p in sorted(root.glob("*/validation/results.json"), key=lambda p: -p.stat().st_mtime):
            runs.append(
                {
                    "run": p.parent.parent.name,
                    "report": f"/kbs/{handle.name}/tune/runs/{p.parent.parent.name}/report",
                }
            )
    return {
        "kb": handle.name,
        "questions": questions,
        "bases": bases,
        "default_method": default,
        "route": route,
        "runs": runs,
    }


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def _run_file(handle: KBHandle, run_id: str, name: str) -> Path:
    path = _runs(handle) / run_id / "validation" / name
    if not _RUN_ID.match(run_id) or not path.is_file():
        raise NotFoundError(
            f"no {name} for tune run {run_id!r} in knowledge base {handle.name!r}",
            f"See GET /kbs/{handle.name}/tune for the runs, "
            f"or the job at GET /kbs/{handle.name}/jobs/{run_id}",
        )
    return path


@router.get("/kbs/{kb}/tune/runs/{run_id}/results")
def tune_results(run_id: str, handle: KBDep) -> JSONResponse:
    path = _run_file(handle, run_id, "results.json")
    return JSONResponse(json.loads(path.read_text(encoding="utf-8")))


@router.get("/kbs/{kb}/tune/runs/{run_id}/report", response_class=PlainTextResponse)
def tune_report(run_id: str, handle: KBDep) -> PlainTextResponse:
    text = _run_file(handle, run_id, "report.md").read_text(encoding="utf-8")
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@router.get("/kbs/{kb}/tune/runs/{run_id}/chart", response_class=FileResponse)
def tune_chart(run_id: str, handle: KBDep) -> FileResponse:
    return FileResponse(_run_file(handle, run_id, "chart.png"), media_type="image/png")
