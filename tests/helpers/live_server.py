"""The zhiku app under Uvicorn on a free loopback port, in a background thread: real HTTP for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class LiveServer:
    def __init__(self, app: Any, port: int) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{port}"

    @property
    def state(self) -> Any:
        return self.app.state.zhiku


@contextmanager
def live_server(home: Path, port: int = 0, **options: Any) -> Iterator[LiveServer]:
    """``port`` 0 lets the kernel pick a free one; a test restarting "the same server" passes the
    port of the first, so a browser's localStorage (per origin) carries over."""
    import uvicorn

    from zhiku.api.app import create_app

    app = create_app(home, **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))  # port 0: the kernel picks a free one, no race with other tests
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def wait_job(client: Any, kb: str, job: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """Poll an ingest or eval job until it is done or failed."""
    deadline = time.monotonic() + timeout
    while job["state"] not in ("done", "failed"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job['id']} still {job['state']} after {timeout}s")
        time.sleep(0.05)
        job = client.get(f"/kbs/{kb}/jobs/{job['id']}").json()
    return job


def home_with_docs_kb(home: Path) -> Path:
    """A home with a KB "docs" (fast dense) holding an English guide and a Chinese regulation."""
    from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION, fast_config
    from zhiku.service import KnowledgeBase

    docs = home.parent / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    (docs / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    with KnowledgeBase.open("docs", home=home, config=fast_config()) as kb:
        kb.ingest([docs])
    return home
