"""Background jobs (ingesting uploads, running evaluations) and their progress.

A job runs in its own thread so the request that started it returns at once; clients poll
``GET /kbs/{kb}/jobs/{id}`` or follow its server-sent events. Jobs live in memory: a restarted
server forgets them, but never their effects (those are in the catalog).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from zhiku.api.errors import BUG
from zhiku.errors import NotFoundError, ZhikuError
from zhiku.progress import Progress
from zhiku.service import IngestProgress

log = logging.getLogger("zhiku.api")

State = Literal["queued", "running", "done", "failed"]


@dataclass
class Job:
    id: str
    kb: str
    kind: str
    state: State = "queued"
    phase: str = "queued"
    done: int = 0
    total: int = 0
    chunks: int = 0
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    version: int = 0  # bumped on every change, so an event stream sends only what changed
    #: every phase so far, each with its own counts: [{"name", "done", "total"}], oldest first
    phases: list[dict[str, Any]] = field(default_factory=list)
    #: 0..1, never goes backwards; 1 once the job is finished (see ``advance_progress``)
    progress: float = 0.0
    #: the HTTP status of a failure, for a route that waited for the job and answers with its error
    http_status: int | None = None

    @property
    def finished_(self) -> bool:
        return self.state in ("done", "failed")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kb": self.kb,
            "kind": self.kind,
            "state": self.state,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "chunks": self.chunks,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "result": self.result,
            "error": self.error,
            "phases": [dict(p) for p in self.phases],
            "progress": round(self.progress, 4),
        }

    def begin_phase(self, name: str, total: int) -> None:
        """A new phase with its own counts; the ones before it are complete."""
        for p in self.phases:
            p["done"] = p["total"]
        self.phases.append({"name": name, "done": 0, "total": total})
        self.phase, self.done, self.total = name, 0, total
        self._advance_progress()

    def count(self, n: int) -> None:
        self.done += n
        if self.phases:
            self.phases[-1]["done"] = self.done
        self._advance_progress()

    def finish(self) -> None:
        for p in self.phases:
            p["done"] = p["total"]
        self.progress = 1.0
        # "done 0/2032" read as nothing done: a finished job shows its last phase complete.
        self.done = self.total

    def _advance_progress(self) -> None:
        # The number of phases is not known up front (which indexes are stale is decided while the
        # job runs), so each phase takes half of what is left: reading files 0-50%, the first
        # index 50-75%, and so on. Monotonic by construction; 100% only when the job is finished.
        start = 1.0 - 0.5 ** (len(self.phases) - 1) if self.phases else 0.0
        share = 0.5 ** len(self.phases) if self.phases else 0.0
        fraction = min(1.0, self.done / self.total) if self.total else 0.0
        self.progress = max(self.progress, start + share * fraction)


class JobManager:
    """Runs jobs in threads and keeps the last ``keep`` of them for clients to look up."""

    # 1,000: a server taking a few uploads a second (issue 28's load: 6-15) must still know a job
    # when its client comes back for it a minute later; a finished job is about a kilobyte.
    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._changed = threading.Condition()

    def submit(self, kb: str, kind: str, work: Callable[[Job], dict[str, Any]]) -> Job:
        """A job run by a thread of its own (an evaluation, a tune step)."""
        job = self.create(kb, kind)
        name = f"zhiku-{kind}-{job.id}"
        threading.Thread(target=self._run, args=(job, work), name=name, daemon=True).start()
        return job

    def create(self, kb: str, kind: str) -> Job:
        """A queued job that someone else runs (the KB's write stream: ``api/writer.py``)."""
        job = Job(uuid.uuid4().hex[:12], kb, kind)
        with self._changed:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs.values()))
                if not oldest.finished_:
                    break
                self._jobs.popitem(last=False)
        return job

    def begin(self, job: Job, phase: str = "waiting") -> None:
        self.update(job, state="running", phase=phase, started=time.time())

    def _run(self, job: Job, work: Callable[[Job], dict[str, Any]]) -> None:
        self.begin(job)
        try:
            result = work(job)
        except ZhikuError as e:
            self.fail(job, {"code": e.code, "message": e.one_line()}, e.http_status)
        except Exception:  # a bug: keep the traceback in the log, tell the client only that it failed
            log.exception("job %s (%s) failed", job.id, job.kind)
            self.fail(job, {"code": "internal", "message": BUG}, 500)
        else:
            self.complete(job, result)

    def complete(self, job: Job, result: dict[str, Any]) -> None:
        """Finished with ``result``; failed after all if the work put an error in ``_failed``."""
        failed = result.pop("_failed", None)
        with self._changed:
            job.finish()
        self.update(
            job,
            state="failed" if failed else "done",
            phase="failed" if failed else "done",
            finished=time.time(),
            result=result,
            error=failed,
        )

    def fail(self, job: Job, error: dict[str, str], http_status: int = 500) -> None:
        self.update(
            job, state="failed", phase="failed", finished=time.time(), error=error, http_status=http_status
        )

    def update(self, job: Job, **changes: Any) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(job, key, value)
            job.version += 1
            self._changed.notify_all()

    def get(self, kb: str, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.kb != kb:
            raise NotFoundError(
                f"no job {job_id!r} for knowledge base {kb!r}",
                "Jobs are kept in memory: a restarted server has forgotten them",
            )
        return job

    def list(self, kb: str) -> list[Job]:
        return [j for j in reversed(self._jobs.values()) if j.kb == kb]

    def wait(self, job: Job, version: int, timeout: float) -> int:
        """Block until ``job`` changes past ``version`` (or ``timeout``); return its version."""
        with self._changed:
            self._changed.wait_for(lambda: job.version != version, timeout)
            return job.version

    def join(self, job: Job, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not job.finished_:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(left)
        return job


def job_responses(what: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that starts a job: 202 at once, or 200 with ``wait=true``."""
    return {
        202: {"description": f"{what}, to follow at /kbs/{{kb}}/jobs/{{id}}"},
        200: {"description": f"with wait=true: {what}, finished (done or failed)"},
    }


def job_location(kb: str, job_id: str) -> str:
    """The job's URL for a ``Location`` header: HTTP headers are latin-1, a KB name may be 知识库."""
    from urllib.parse import quote

    return f"/kbs/{quote(kb, safe='')}/jobs/{job_id}"


class _Progress:
    def __init__(self, jobs: JobManager, job: Job) -> None:
        self.jobs = jobs
        self.job = job
        self._last = 0.0

    def _step(self, n: int, chunks: int = 0) -> None:
        self.job.count(n)
        self.job.chunks += chunks
        now = time.monotonic()
        # Clients need a few updates a second; waking every waiter per chunk would cost more.
        if now - self._last > 0.1 or self.job.done >= self.job.total:
            self._last = now
            self.jobs.update(self.job)

    def close(self) -> None:
        self.jobs.update(self.job)


class FileProgress(_Progress, IngestProgress):
    """The ingest pipeline's ``Progress`` (files read and chunked), shown as phase "ingest"."""

    def start(self, total_files: int) -> None:
        self.job.begin_phase("ingest", total_files)
        self.jobs.update(self.job)

    def advance(self, files: int = 1, chunks: int = 0) -> None:
        self._step(files, chunks)

    def pages(self, source: str, done: int, total: int) -> None:
        pass  # OCR pages: the job counts files; a page-level phase is left to the webapp's phases


class PhaseProgress(_Progress, Progress):
    """Progress per labelled phase: the facade's ``BuildProgress`` (chunks indexed per method, shown
    as "build <method>") and the evaluation's ``EvalProgress`` (queries run, "eval <method>")."""

    def __init__(self, jobs: JobManager, job: Job, prefix: str = "build") -> None:
        super().__init__(jobs, job)
        self.prefix = prefix

    def start(self, label: str, total: int) -> None:
        self.job.begin_phase(f"{self.prefix} {label}", total)
        self.jobs.update(self.job)

    def advance(self, n: int) -> None:
        self._step(n)
