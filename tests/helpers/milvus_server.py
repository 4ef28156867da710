"""A real Milvus standalone server (the binary from PyPI's ``milvus`` 2.3.x) on free loopback ports.

The server lives in its own virtualenv (``make milvus-server`` creates ``.milvus-venv``): its
package's Python side pins an old ``pymilvus`` that clashes with zhiku's lock, and the tests need
only its binary and a port; zhiku's own ``pymilvus`` is the client. ``milvus_prepare.py`` runs in
that venv to unpack the binary and write a config; this module starts, kills and restarts the
process itself, so a test can ``kill -9`` it and start it again on the same data folder.

Tests that use it are skipped unless ``ZHIKU_MILVUS_SERVER=1`` (``.ci/run`` sets it); with the flag
set, a missing server venv is an error, not a skip, so CI cannot pass without having run them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("ZHIKU_MILVUS_VENV", ROOT / ".milvus-venv"))
ENABLED = os.environ.get("ZHIKU_MILVUS_SERVER", "") not in ("", "0")
SKIP_REASON = "a real Milvus server: set ZHIKU_MILVUS_SERVER=1 after `make milvus-server` (.ci/run does)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MilvusServer:
    """One standalone server process over one data folder."""

    def __init__(self, data_dir: Path) -> None:
        python = VENV / "bin" / "python"
        if not python.exists():
            raise RuntimeError(f"no Milvus server venv at {VENV}: run `make milvus-server` first")
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [
                str(python),
                str(Path(__file__).with_name("milvus_prepare.py")),
                str(data_dir),
                str(VENV / "milvus-server"),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        info = json.loads(out.stdout.strip().splitlines()[-1])
        self.exe = Path(info["exe"])
        self.port = int(info["proxy_port"])
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.health_port = 0

    def start(self, timeout: float = 120) -> None:
        self.health_port = _free_port()
        env = {
            **os.environ,
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(self.health_port),
            "MILVUS_RUN_DIR": str(self.data_dir / "run"),
            "LD_LIBRARY_PATH": f"{self.exe.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}",
        }
        (self.data_dir / "logs").mkdir(exist_ok=True)
        with open(self.data_dir / "logs" / "milvus-stdout.log", "ab") as log:
            # Its own session: a kill reaches only this server, and Ctrl+C in pytest does not.
            self.proc = subprocess.Popen(
                [str(self.exe), "run", "standalone"],
                cwd=self.data_dir,  # the binary reads configs/milvus.yaml from its working folder
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Milvus exited with {self.proc.returncode}; see {self.data_dir}/logs")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.read().strip() == b"OK":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.kill()
        raise TimeoutError(f"Milvus not healthy after {timeout:.0f}s; see {self.data_dir}/logs")

    def kill(self, grace: float = 0.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (the server ignores SIGTERM for 30 s+)."""
        if self.proc is None:
            return
        if grace:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own process group: only this server
            self.proc.wait(30)
        self.proc = None

    def restart(self) -> None:
        """kill -9 and start again on the same data folder: what survives is what was durable."""
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill(grace=2.0)
        shutil.rmtree(self.data_dir, ignore_errors=True)
