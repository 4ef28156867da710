"""How far a build has come, where other processes can read it: ``<kb>/.progress/<method>.json``.

The building process writes it atomically (about once a second) while it embeds or indexes, and
removes it when the index is published. A reader (``zhiku status``, ``GET /kbs/{kb}``, a search
that has to leave a part out) turns it into "embedding 4,210/20,611 chunks, ~6 min"; a file whose
writer is gone says how far an interrupted build came (``zhiku build`` resumes from the vector cache).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhiku.progress import Progress

#: seconds between two writes of the progress file
EVERY_S = 1.0

#: the progress file of an ingest's reading phase (files read), beside the methods' ones
INGEST = "_ingest"


def progress_file(indexes: Path, method: str) -> Path:
    # Beside indexes/, not in it: crash recovery removes every dot folder in indexes/ that is not a
    # published index, and an interrupted build's progress must outlive it (to say how far it came).
    return indexes.parent / ".progress" / f"{method}.json"


class RecordingProgress:
    """A ``Progress`` that also records itself in the method's progress file (and forwards to
    ``inner``, the CLI's bar or a job's state)."""

    def __init__(self, path: Path, method: str, inner: Progress | None) -> None:
        self.path = path
        self.method = method
        self.inner = inner
        self.total = 0
        self.done = 0
        self.started = time.time()
        self._written = 0.0
        self._rate_from: tuple[float, int] | None = None  # (time, done) after the cache was read
        self._pid = os.getpid()
        self.phase = ""  # "" while embedding (or the only step); "indexing" after it

    def start(self, label: str, total: int, phase: str = "") -> None:
        self.total, self.done, self.started, self.phase = total, 0, time.time(), phase
        self._rate_from = None
        if self.inner:
            self.inner.start(label, total)
        self._write(force=True)

    def next_phase(self, phase: str, total: int) -> None:
        """A later step of the same build (``indexing``: vectors into an HNSW graph, minutes at a
        million), counted from 0 again, so status does not sit at "1,003,764/1,003,764 chunks"."""
        self.start(f"{self.method}: {phase}", total, phase)

    def advance(self, n: int) -> None:
        self.done += n
        if self.inner:
            self.inner.advance(n)
        first = self._rate_from is None
        if first:
            # The first step is what the vector cache already held (or the first batch): the rate
            # of what is left is measured from here.
            self._rate_from = (time.time(), self.done)
        self._write(force=first)

    def close(self) -> None:
        if self.inner:
            self.inner.close()

    def finished(self) -> None:
        self.path.unlink(missing_ok=True)

    def stopped(self) -> None:
        """The build failed in this (living) process: record it as stopped, not running."""
        self._pid = 0
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._written < EVERY_S:
            return
        self._written = now
        rate = None
        if self._rate_from and now > self._rate_from[0] + 2 and self.done > self._rate_from[1]:
            rate = (self.done - self._rate_from[1]) / (now - self._rate_from[0])
        from zhiku.store.files import atomic_write_json

        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.path,
            {
                "method": self.method,
                "done": self.done,
                "total": self.total,
                "started": self.started,
                "updated": now,
                "per_second": rate,
                "pid": self._pid,
                "phase": self.phase,
            },
        )


@dataclass(frozen=True)
class BuildState:
    """What a method's progress file says: a build running now, or one that stopped part way."""

    done: int
    total: int
    running: bool
    seconds_left: float | None
    updated: float
    phase: str = ""  # "indexing": the vectors are embedded and go into the index

    def describe(self, what: str = "chunks") -> str:
        count = f"{self.done:,}/{self.total:,} {what}"
        if self.phase:
            count = f"{self.phase} {self.done:,}/{self.total:,} vectors"
        if not self.running:
            return (
                f"interrupted at {count} (its vectors are kept): `zhiku build` resumes it"
                if self.total
                else "interrupted: `zhiku build` builds it"
            )
        left = f", ~{_duration(self.seconds_left)} left" if self.seconds_left is not None else ""
        return f"building: {count}{left}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "total": self.total,
            "running": self.running,
            "seconds_left": None if self.seconds_left is None else round(self.seconds_left),
        }


def read_state(indexes: Path, method: str) -> BuildState | None:
    """The build state of ``method`` from its progress file, or None if no build left one."""
    try:
        data = json.loads(progress_file(indexes, method).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    done, total = int(data.get("done", 0)), int(data.get("total", 0))
    running = _alive(int(data.get("pid", 0)))
    rate = data.get("per_second")
    left = (total - done) / rate if running and rate else None
    return BuildState(
        min(done, total) if total else done,
        total,
        running,
        left,
        float(data.get("updated", 0)),
        str(data.get("phase") or ""),
    )


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class IngestRecorder:
    """An ``IngestProgress`` that records files read in the ``_ingest`` progress file (and forwards
    to ``inner``), so a reader can tell an ingest that is running from one that was killed."""

    def __init__(self, indexes: Path, inner: Any) -> None:
        self.rec = RecordingProgress(progress_file(indexes, INGEST), INGEST, None)
        self.inner = inner

    def start(self, total_files: int) -> None:
        self.rec.start("files", total_files)
        if self.inner:
            self.inner.start(total_files)

    def advance(self, files: int = 1, chunks: int = 0) -> None:
        self.rec.advance(files)
        if self.inner:
            self.inner.advance(files, chunks)

    def pages(self, source: str, done: int, total: int) -> None:
        if self.inner:
            self.inner.pages(source, done, total)

    def close(self) -> None:
        if self.inner:
            self.inner.close()

    def finished(self) -> None:
        self.rec.finished()
