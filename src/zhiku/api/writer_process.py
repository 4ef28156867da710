"""The server's writer process: applies a KB's queued uploads and deletes, one batch at a time.

    python -m zhiku.api.writer_process PARENT_PID NICE    (started by ``api/writer.py``, never by hand)

Why a process: an ingest's index build (BM25 over ~20,000 chunks of the laws KB, seconds of pure
Python and numpy) ran in a thread of the server and held the GIL, so the searches it served
meanwhile waited: 520 search req/s alone fell to 54 req/s with 5% uploads (issue 28). Here it
runs beside the server, at a lower CPU priority when asked (``zhiku serve`` asks for ``NICE``):
searches come first on a busy machine, the build takes what is left. Readers see the new index
version once it is published (the KB's writer lock and the index links make that safe across
processes, as for a ``zhiku ingest`` run next to the server).

Protocol: one JSON object a line. The server sends ``{"kb": ROOT, "ops": [...]}``; this process
answers with progress lines ``{"progress": JOB|null, "channel": "files"|"build", "call": NAME,
"args": [...]}`` and one ``{"done": {JOB: {"result": {...}} | {"error": {...}, "status": N}}}`` per
batch. An op is ``{"kind": "upload", "job", "folder", "staged": [{"name", "path", "digest"}],
"refused"}`` or ``{"kind": "delete", "job", "ids", "unlink": [paths]}``; they are applied in order
in one writer session (``KnowledgeBase.changes``): each changes the catalog, and the indexes are
built once at the end. It exits when the server closes its end of the pipe, or dies.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: how much lower than the server ``zhiku serve`` runs this process: where the server's work keeps
#: every core busy, the writer gets about a tenth of what a busy process gets (Linux CFS weights
#: 1024 vs 110) and searches keep theirs; an idle machine gives it all it wants. On a machine kept
#: busy by *other* programs it is starved too, so it is the server's choice, not a constant of
#: every app (tests run their writers at the normal priority).
NICE = 10

Send = Callable[[dict[str, Any]], None]


class _Relay:
    """A progress object that forwards its calls to the server, a few per second at most."""

    def __init__(self, send: Send, job: str | None, channel: str) -> None:
        self.send, self.job, self.channel = send, job, channel
        self._pending: list[int] = []
        self._last = 0.0

    def _forward(self, call: str, args: list[Any]) -> None:
        self.send({"progress": self.job, "channel": self.channel, "call": call, "args": args})

    def _flush(self) -> None:
        if self._pending:
            self._forward("advance", self._pending)
            self._pending = []
        self._last = time.monotonic()

    def start(self, *args: Any) -> None:
        self._flush()
        self._forward("start", list(args))

    def advance(self, *args: int) -> None:
        counts = list(args) or [1]
        if self._pending and len(self._pending) == len(counts):
            counts = [a + b for a, b in zip(counts, self._pending, strict=True)]
        self._pending = counts
        if time.monotonic() - self._last > 0.1:
            self._flush()

    def pages(self, source: str, done: int, total: int) -> None:
        pass  # the job counts files (as in the server's own FileProgress)

    def close(self) -> None:
        self._flush()


def apply_batch(kb_root: Path, ops: list[dict[str, Any]], send: Send) -> dict[str, dict[str, Any]]:
    """Apply ``ops`` to the KB at ``kb_root`` in one writer session; the outcome of each, by job."""
    from zhiku.config import KBConfig
    from zhiku.errors import ZhikuError
    from zhiku.home import KBLayout
    from zhiku.service import KnowledgeBase

    outcomes: dict[str, dict[str, Any]] = {}
    layout = KBLayout(kb_root)
    build = _Relay(send, None, "build")
    try:
        if not layout.exists():
            from zhiku.errors import NotFoundError

            raise NotFoundError(f"knowledge base {layout.name!r} no longer exists", "See GET /kbs")
        kb = KnowledgeBase(layout, KBConfig.load(layout.config))
        try:
            with kb.changes(build_progress=build) as built:
                for op in ops:
                    outcomes[op["job"]] = _apply_one(kb, op, send)
        finally:
            kb.close()
    except Exception as e:
        # Nothing was built (the lock was held elsewhere, or the build failed): every op not yet
        # failed fails with it. The catalog keeps what it committed; the next session builds it.
        if isinstance(e, ZhikuError):
            error = {"error": {"code": e.code, "message": e.one_line()}, "status": e.http_status}
        else:
            import logging

            from zhiku.api.errors import BUG

            logging.getLogger("zhiku.api").exception("writer: a batch of %d failed", len(ops))
            error = {"error": {"code": "internal", "message": BUG}, "status": 500}
        for op in ops:
            if "error" not in outcomes.get(op["job"], {}):
                outcomes[op["job"]] = error
        _unstage_unplaced(ops)
        return outcomes
    finally:
        build.close()
    batch = [op["job"] for op in ops]
    for outcome in outcomes.values():
        if "result" in outcome:
            outcome["result"].update(built=dict(built.built), not_built=dict(built.skipped), batch=batch)
    return outcomes


def _apply_one(kb: Any, op: dict[str, Any], send: Send) -> dict[str, Any]:
    from zhiku.api.errors import BUG
    from zhiku.errors import ZhikuError

    try:
        if op["kind"] == "upload":
            return {"result": _upload(kb, op, send)}
        return {"result": _delete(kb, op)}
    except ZhikuError as e:
        return {"error": {"code": e.code, "message": e.one_line()}, "status": e.http_status}
    except Exception:
        import logging

        logging.getLogger("zhiku.api").exception("writer: %s job %s failed", op["kind"], op["job"])
        return {"error": {"code": "internal", "message": BUG}, "status": 500}


def _upload(kb: Any, op: dict[str, Any], send: Send) -> dict[str, Any]:
    from zhiku.api.uploads import Staged, claim, ingested_now, place, settle, unstage

    folder = Path(op["folder"])
    staged = [Staged(s["name"], Path(s["path"]), s["digest"]) for s in op["staged"]]
    uploads = kb.layout.root.resolve() / "uploads"
    # From here this process owns the staging folder: killed, it leaves it to recovery (which puts
    # a replaced file back), as a killed server does.
    claim(folder)
    try:
        placed = place(uploads, staged)
        try:
            report, _ = kb.ingest(
                [p.final for p in placed], progress=_Relay(send, op["job"], "files"), prune=False
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

    stored = {s: kb.content_hash_of(s) for s in [*report.added, *report.updated, *report.unchanged]}
    result: dict[str, Any] = {
        # the id of each file stored, so a client can show or delete it without searching the list
        "ids": {named(s): document_id(kb, s) for s, held in stored.items() if held is not None},
        "added": [named(s) for s in report.added],
        "updated": [named(s) for s in report.updated],
        "unchanged": [named(s) for s in report.unchanged],
        "duplicates": [{"file": named(s), "same_as": named(o)} for s, o in report.duplicates],
        "failed": [{"file": named(s), "error": message(s, e)} for s, e in report.failed],
        "chunks": report.chunks,
        "seconds": round(report.seconds, 3),
        "refused": op.get("refused") or [],
    }
    if report.failed and not (report.added or report.updated or report.unchanged):
        reasons = "; ".join(f["error"] for f in result["failed"])
        result["_failed"] = {"code": "ingest_failed", "message": reasons}
    return result


def document_id(kb: Any, source: str) -> str:
    return str(kb.find_documents(source)[0].id)


def _delete(kb: Any, op: dict[str, Any]) -> dict[str, Any]:
    # Ids deleted meanwhile (by an earlier op, or twice in a row) are simply gone: deleting is idempotent.
    n = kb.delete_documents_by_id(op["ids"])
    for path in op.get("unlink", []):
        Path(path).unlink(missing_ok=True)  # a file we stored under uploads/, never a path on the server
    return {"deleted": n}


def _unstage_unplaced(ops: list[dict[str, Any]]) -> None:
    """After a failed session: the staging folders of uploads never reached (their files were never
    placed, so there is nothing to put back)."""
    from zhiku.api.uploads import unstage

    for op in ops:
        if op["kind"] == "upload" and Path(op["folder"]).exists():
            unstage(Path(op["folder"]))


def main(argv: list[str]) -> int:
    from zhiku.home import die_with_parent

    parent, nice = int(argv[0]), int(argv[1]) if len(argv) > 1 else 0
    die_with_parent(parent)
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass  # not allowed here: run at the server's priority
    # The protocol owns stdout: anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg, ensure_ascii=False) + "\n")
        out.flush()

    import zhiku.service  # noqa: F401  (loaded while waiting for the first batch, not during it)

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        send({"done": apply_batch(Path(request["kb"]), request["ops"], send)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
