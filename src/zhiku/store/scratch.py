"""Scratch folders that a killed process does not leave behind for good.

A folder is named ``<prefix><pid>-<random>``; before making a new one, folders of the same prefix
whose process is gone are removed (an evaluation killed with -9 leaves tens of MB in /tmp).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from zhiku.store.liveness import pid_alive


def scratch_dir(prefix: str, parent: Path | None = None) -> Path:
    root = Path(parent or tempfile.gettempdir())
    clean_stale(prefix, root)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))


def clean_stale(prefix: str, root: Path) -> list[Path]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)-[^/]+")
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and entry.is_dir() and not entry.is_symlink() and not pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
