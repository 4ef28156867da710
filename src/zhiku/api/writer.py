"""A knowledge base's write stream: the uploads and deletes of the server, queued and batched.

Every upload and document delete of a KB becomes a job in its stream, applied in the order it
arrived. One thread per KB takes *every* operation queued so far and hands them, as one batch, to
the writer process (``writer_process.py``), which changes the catalog for each and then rebuilds
the stale indexes once: a burst of uploads during a 10-second BM25 rebuild costs one more rebuild,
not one each (issue 28: 5% uploads among 32 busy clients are about 15 a second on the laws KB).

A delete no longer fails with 423 while an ingest runs: it waits in the stream like an upload
(``documents.py`` answers 202 with its job, or 200 when the stream was idle and it is done).

Jobs live in memory, as the server's other jobs do: a server killed with operations still queued
forgets them (their clients were answered 202, not 200; the staging folders of the uploads are
removed by the next start's recovery).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from zhiku.api.jobs import FileProgress, Job, JobManager, PhaseProgress

if TYPE_CHECKING:
    from zhiku.home import KBLayout


class Handle(Protocol):
    """What a stream needs of the server's ``KBHandle`` (named by a Protocol: ``deps`` imports this
    module, so importing ``deps`` here would be an import cycle)."""

    layout: KBLayout
    write_lock: threading.Lock

    @property
    def name(self) -> str: ...


log = logging.getLogger("zhiku.api")

#: at most this many operations in one batch (one writer session), so a job's wait stays bounded
MAX_BATCH = 200

Outcomes = dict[str, dict[str, Any]]
OnProgress = Callable[[dict[str, Any]], None]


class WriterDied(Exception):
    """The writer process ended in the middle of a batch (killed, or out of memory)."""


class WriterProcess:
    """``python -m zhiku.api.writer_process`` as a child of the server, one for all its KBs (their
    batches take turns), started on first use or by ``start`` and kept for the next batch (its
    imports and jieba's dictionary load once). ``in_process`` runs the batches in the calling
    thread instead (the GIL is then shared with the searches)."""

    def __init__(self, in_process: bool = False, nice: int = 0) -> None:
        self.in_process = in_process
        self.nice = nice  # how much lower its CPU priority is than the server's (writer_process.NICE)
        self.proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start the process now (``zhiku serve`` does, so the first upload does not wait for it)."""
        if not self.in_process:
            with self._lock:
                if not self._closed:
                    self._started()

    def run(self, kb_root: Path, ops: list[dict[str, Any]], on_progress: OnProgress) -> Outcomes:
        with self._lock:
            if self._closed:
                raise WriterDied("the server is stopping")
            return self._run(kb_root, ops, on_progress)

    def _run(self, kb_root: Path, ops: list[dict[str, Any]], on_progress: OnProgress) -> Outcomes:
        if self.in_process:
            from zhiku.api.writer_process import apply_batch

            return apply_batch(kb_root, ops, on_progress)
        request = json.dumps({"kb": str(kb_root), "ops": ops}, ensure_ascii=False) + "\n"
        proc = self._started()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(request)
            proc.stdin.flush()
            for line in proc.stdout:
                msg = json.loads(line)
                if "done" in msg:
                    outcomes: Outcomes = msg["done"]
                    return outcomes
                on_progress(msg)
        except (OSError, ValueError) as e:  # a broken pipe, or half a line from a dying process
            self._reap()
            raise WriterDied(str(e)) from e
        self._reap()
        raise WriterDied(f"the writer process stopped (exit status {proc.returncode})")

    def _started(self) -> subprocess.Popen[str]:
        if self.proc is not None and self.proc.poll() is None:
            return self.proc
        self._reap()
        self.proc = _from_lasting_thread(
            lambda: subprocess.Popen(
                [sys.executable, "-m", "zhiku.api.writer_process", str(os.getpid()), str(self.nice)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        )
        return self.proc

    def _reap(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=10)  # it exits when its stdin closes
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def close(self) -> None:
        """Stop the process once its running batch is done (the server is stopping)."""
        with self._lock:
            self._closed = True
            self._reap()


_SPAWNS: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[Any]]] = queue.SimpleQueue()
_SPAWNER: threading.Thread | None = None
_SPAWNER_LOCK = threading.Lock()


def _from_lasting_thread(make: Callable[[], subprocess.Popen[str]]) -> subprocess.Popen[str]:
    """``make()`` run by a thread that lives as long as this process. The writer process dies with
    the *thread* that started it (``PR_SET_PDEATHSIG`` follows the thread, not the process): started
    by a short-lived thread (the first request's, a KB stream's), it would be killed mid-batch
    when that thread ends."""
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:

            def serve() -> None:
                while True:
                    fn, answer = _SPAWNS.get()
                    try:
                        answer.put((fn(), None))
                    except BaseException as e:  # handed back to the caller, who raises it
                        answer.put((None, e))

            _SPAWNER = threading.Thread(target=serve, name="zhiku-writer-spawner", daemon=True)
            _SPAWNER.start()
    answer: queue.SimpleQueue[Any] = queue.SimpleQueue()
    _SPAWNS.put((make, answer))
    proc, error = answer.get()
    if error is not None:
        raise error
    made: subprocess.Popen[str] = proc
    return made


class WriteStream:
    """The operations of one KB waiting for the writer, and the thread that applies them."""

    def __init__(self, handle: Handle, jobs: JobManager, writer: WriterProcess) -> None:
        self.handle = handle
        self.jobs = jobs
        self.writer = writer
        self._queue: list[tuple[Job, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def idle(self) -> bool:
        """Nothing queued and nothing running: an operation submitted now starts at once."""
        with self._cond:
            return not self._busy and not self._queue

    def submit(self, kind: str, op: dict[str, Any]) -> Job:
        """Queue ``op`` (see ``writer_process``) as a job of ``kind`` (``ingest``, ``delete``)."""
        job = self.jobs.create(self.handle.name, kind)
        with self._cond:
            if self._closed:
                from zhiku.errors import NotFoundError

                raise NotFoundError(f"knowledge base {self.handle.name!r} is closed", "See GET /kbs")
            self._queue.append((job, {**op, "job": job.id}))
            self._cond.notify_all()
            if self._thread is None:
                # Started (and kept) by a thread that lives as long as the server: the writer
                # process dies with the thread that started it (PR_SET_PDEATHSIG).
                self._thread = threading.Thread(
                    target=self._loop, name=f"zhiku-writer-{self.handle.name}", daemon=True
                )
                self._thread.start()
        return job

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    batch, self._queue = self._queue, []
                    for job, _ in batch:
                        self.jobs.fail(job, _stopped(), 503)
                    self._cond.notify_all()
                    return
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                self._busy = True
            try:
                self._apply(batch)
            except Exception:  # a bug here must not stop the stream: the jobs say it failed
                log.exception("the write stream of %s failed", self.handle.name)
                from zhiku.api.errors import BUG

                for job, _ in batch:
                    if not job.finished_:
                        self.jobs.fail(job, {"code": "internal", "message": BUG}, 500)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _apply(self, batch: list[tuple[Job, dict[str, Any]]]) -> None:
        jobs = self.jobs
        for job, _ in batch:
            jobs.begin(job)
        files = {job.id: FileProgress(jobs, job) for job, _ in batch}
        builds = [PhaseProgress(jobs, job) for job, _ in batch]

        def on_progress(msg: dict[str, Any]) -> None:
            call, args = msg.get("call"), msg.get("args", [])
            if call not in ("start", "advance", "close"):
                return
            channel, job_id = msg.get("channel"), str(msg.get("progress"))
            targets: list[Any] = builds if channel == "build" else [files.get(job_id)]
            for target in targets:
                if target is not None:
                    getattr(target, call)(*args)

        # In-process writers (settings, deleting the KB, tuning) wait for the batch, or answer 423;
        # a KB being deleted holds the lock and closes this stream meanwhile.
        while not self.handle.write_lock.acquire(timeout=0.5):
            if self._closed:
                for job, _ in batch:
                    jobs.fail(job, _stopped(), 503)
                _release_unclaimed([op for _, op in batch])
                return
        try:
            outcomes = self.writer.run(self.handle.layout.root, [op for _, op in batch], on_progress)
        except WriterDied as e:
            log.error("the writer process of %s died: %s", self.handle.name, e)
            _release_unclaimed([op for _, op in batch])
            outcomes = {}
        finally:
            self.handle.write_lock.release()
        for job, _ in batch:
            outcome = outcomes.get(job.id)
            if outcome is None:
                jobs.fail(job, _died(), 503)
            elif "result" in outcome:
                jobs.complete(job, outcome["result"])
            else:
                jobs.fail(job, outcome["error"], int(outcome.get("status") or 500))

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and not self._queue, timeout)

    def close(self, timeout: float = 60) -> None:
        """Stop taking operations; let the running batch end (up to ``timeout``)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._busy, timeout)


def _release_unclaimed(ops: list[dict[str, Any]]) -> None:
    """After the writer died: staging folders it never took over (still owned by this server, so
    recovery would leave them) hold files never placed: removed. Those it took over are left to the
    next writer's recovery, which puts back a file they replaced."""
    from zhiku.api.uploads import owned_by_me, unstage

    for op in ops:
        folder = Path(op.get("folder", ""))
        if op.get("kind") == "upload" and folder.is_dir() and owned_by_me(folder):
            unstage(folder)


def _died() -> dict[str, str]:
    return {
        "code": "interrupted",
        "message": "the server's writer process stopped (killed?) before this change was done; "
        "what it had stored is kept, the rest is not. Send it again",
    }


def _stopped() -> dict[str, str]:
    return {"code": "interrupted", "message": "the server stopped before this change was made. Send it again"}
