"""Which processes are alive, and child processes that die with their parent.

Crash safety rests on two facts checked here: a lock or a staging folder whose owner process is
gone may be taken over, and a worker process must never outlive the process that started it (a
worker left behind keeps memory, and used to keep the KB's lock).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) S ...": the state follows the last ')'; Z is a zombie, X is dead.
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) is all we can know


def die_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Make this (child) process exit as soon as ``parent_pid`` dies.

    On Linux the kernel does it (``PR_SET_PDEATHSIG``), even when the parent is killed with -9; a
    watchdog thread polling the parent id covers other systems and the race where the parent died
    before the signal was armed.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the watchdog below still works
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)  # reparented: the parent is gone, and nobody will read our results

    threading.Thread(target=watch, name="zhiku-parent-watch", daemon=True).start()
