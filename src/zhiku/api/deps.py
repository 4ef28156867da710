"""What the routes share: server settings, the knowledge bases of this process, and auth.

Concurrency, per knowledge base:

- **One writer at a time.** Uploads and document deletes queue in the KB's write stream
  (``writer.py``), applied in batches by a writer process; each batch holds ``KBHandle.write_lock``
  in this process (so settings changes, tuning and KB deletion wait or answer 423) and the KB's
  file lock (``layout.writer_lock``) against other processes, such as a ``zhiku ingest`` run next
  to the server. Each write uses its own ``KnowledgeBase`` object, so it never shares a SQLite
  connection or a method instance with the searches running meanwhile.
- **Many readers.** Searches go through one long-lived reader ``KnowledgeBase`` that keeps its
  indexes loaded. During a write they keep answering from the last complete index (SQLite WAL shows
  them committed documents only; index folders are swapped whole), so they see the old state or the
  new one. ``Method.load`` replaces a loaded index in place, attribute by attribute, so a search
  and a reload of the same reader must not overlap: ``read_lock`` serialises the retrieval step
  (milliseconds); answer generation, the slow part of asking, runs outside it.
- **Few threads for CPU work.** Searches and offline answers run in a lane of a few threads (3)
  (``lanes.py``), so that under load they do not take turns on the GIL with dozens of others;
  requests that may wait (an LLM, a stream, ``wait=true``) keep FastAPI's default pool.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from zhiku.api.jobs import JobManager
from zhiku.config import KBConfig
from zhiku.errors import AlreadyExistsError, LockedError, NotFoundError, ZhikuError
from zhiku.home import KBLayout

if TYPE_CHECKING:
    from zhiku.api.writer import WriterProcess, WriteStream
    from zhiku.service import KnowledgeBase


@dataclass(frozen=True)
class ServerSettings:
    home: Path
    api_key: str | None = None
    #: also require the key for reading (set when the server listens beyond loopback)
    auth_reads: bool = False
    max_upload_bytes: int = 50 * 1024 * 1024
    max_json_bytes: int = 10 * 1024 * 1024
    #: apply uploads and deletes in a writer process (``writer.py``); False: in a thread of the
    #: server, whose searches then share the GIL with every index build
    writer_process: bool = True
    #: how much lower the writer process's CPU priority is (``zhiku serve``: ``writer_process.NICE``)
    writer_nice: int = 0


class KBHandle:
    """One knowledge base as this server process sees it (see the module docstring)."""

    def __init__(self, layout: KBLayout) -> None:
        self.layout = layout
        self.write_lock = threading.Lock()
        self.read_lock = threading.RLock()
        self._reader: KnowledgeBase | None = None
        self._config_stamp: tuple[int, int] | None = None
        self._settings: tuple[tuple[int, int] | None, KBConfig | None] | None = None
        self._stream: WriteStream | None = None
        self._stream_lock = threading.Lock()

    def stream(self, jobs: JobManager, writer: WriterProcess) -> WriteStream:
        """The KB's write stream (uploads and deletes, in order, in batches), made on first use."""
        with self._stream_lock:
            if self._stream is None:
                from zhiku.api.writer import WriteStream

                self._stream = WriteStream(self, jobs, writer)
            return self._stream

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def uploads(self) -> Path:
        return self.layout.root.resolve() / "uploads"

    def open_private(self) -> KnowledgeBase:
        """A ``KnowledgeBase`` of its own for a long task (an evaluation); the caller closes it."""
        from zhiku.service import KnowledgeBase

        if not self.layout.exists():
            raise NotFoundError(f"knowledge base {self.name!r} no longer exists", "See GET /kbs")
        return KnowledgeBase(self.layout, KBConfig.load(self.layout.config))

    def settings(self) -> KBConfig | None:
        """The KB's zhiku.toml as it is now (parsed again only when the file changes); None when it
        cannot be read, which the request's own work then reports."""
        stamp = _stamp(self.layout.config)
        cached = self._settings
        if cached is None or cached[0] != stamp:
            try:
                cached = self._settings = (stamp, KBConfig.load(self.layout.config))
            except (ZhikuError, OSError):  # a bad file, or one that cannot be read
                return None
        return cached[1]

    @contextmanager
    def read(self) -> Iterator[KnowledgeBase]:
        """The shared reader, held for the duration of the block (keep the block short)."""
        with self.read_lock:
            stamp = _stamp(self.layout.config)
            if self._reader is not None and stamp != self._config_stamp:
                # zhiku.toml changed (the page's settings, an editor, `zhiku build`): reopen.
                self._reader.close()
                self._reader = None
            if self._reader is None:
                self._reader = self.open_private()
                self._config_stamp = stamp
            yield self._reader

    @contextmanager
    def write(self, wait: bool = True) -> Iterator[KnowledgeBase]:
        """A private ``KnowledgeBase`` for one write, once no other write of this process runs.

        ``wait=False`` fails at once with 423 instead of queueing (for requests that answer inline).
        """
        if not self.write_lock.acquire(blocking=wait):
            raise LockedError(
                f"knowledge base {self.name!r} is being changed by another request",
                f"Wait for the running ingest (GET /kbs/{self.name}/jobs) and try again",
            )
        try:
            kb = self.open_private()
            try:
                yield kb
            finally:
                kb.close()
        finally:
            self.write_lock.release()

    def close(self) -> None:
        with self._stream_lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        with self.read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class KBRegistry:
    """The knowledge bases under the server's home folder (a ``Home``), one ``KBHandle`` per name."""

    def __init__(self, home: Path) -> None:
        from zhiku.home import Home

        self.home = Home(home)
        self._handles: dict[str, KBHandle] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return self.home.names()

    def get(self, name: str) -> KBHandle:
        layout = self.home.layout(name)
        if not layout.exists():
            raise NotFoundError(
                f"no knowledge base {name!r}", "Create it with POST /kbs, or see GET /kbs for the names"
            )
        with self._lock:
            handle = self._handles.get(name)
            if handle is None:
                handle = self._handles[name] = KBHandle(layout)
            return handle

    def known(self, name: str) -> KBHandle | None:
        """The handle of a KB this server has already opened, if it still exists: no lock and no
        more than one stat, so the event loop may ask (``kb_handle``). None: ask ``get``."""
        handle = self._handles.get(name)  # one dict read: atomic, the lock guards creation only
        return handle if handle is not None and handle.layout.exists() else None

    def create(self, name: str, config: KBConfig) -> KBHandle:
        with self._lock:
            try:
                self.home.create(name, config).close()
            except AlreadyExistsError as e:
                raise AlreadyExistsError(
                    e.message, "Pick another name, or delete it first with DELETE /kbs/{name}"
                ) from None
        return self.get(name)

    def delete(self, name: str) -> None:
        handle = self.get(name)
        with handle.write(wait=False):
            with self._lock:
                self._handles.pop(name, None)
            handle.close()
            self.home.delete(name)

    def close(self) -> None:
        with self._lock:
            for handle in self._handles.values():
                handle.close()
            self._handles.clear()


@dataclass
class AppState:
    settings: ServerSettings
    kbs: KBRegistry
    jobs: JobManager = field(default_factory=JobManager)
    writer: WriterProcess = field(init=False)

    def __post_init__(self) -> None:
        from zhiku.api.writer import WriterProcess

        self.writer = WriterProcess(not self.settings.writer_process, self.settings.writer_nice)

    def close(self) -> None:
        self.kbs.close()
        self.writer.close()


def state(request: Request) -> AppState:
    return request.app.state.zhiku


def write_stream(request: Request, handle: KBHandle) -> WriteStream:
    """Where a route queues an upload or a delete of ``handle``'s KB (``writer.py``)."""
    st = state(request)
    return handle.stream(st.jobs, st.writer)


def _check_key(request: Request) -> None:
    key = state(request).settings.api_key
    if key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise HTTPException(
            401,
            "this endpoint needs the server's API key: send the header 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_read(request: Request) -> None:
    """Reading is open on loopback; a server listening beyond it wants the key for everything."""
    if state(request).settings.auth_reads:
        _check_key(request)


def require_write(request: Request) -> None:
    """Changing a knowledge base always needs the key, when one is set."""
    _check_key(request)


async def kb_handle(request: Request, kb: str) -> KBHandle:
    # Every KB route asks for this: a KB already open is found in the event loop, without a trip to
    # a worker thread (one more runnable thread per request under load). The first request for a
    # KB, or one that is gone, goes through ``get`` in a thread, as it may wait for a deletion.
    kbs = state(request).kbs
    handle = kbs.known(kb)
    return handle if handle is not None else await run_in_threadpool(kbs.get, kb)


#: a route parameter for the knowledge base named in the path (``/kbs/{kb}/…``); 404 if there is none
KBDep = Annotated[KBHandle, Depends(kb_handle)]
