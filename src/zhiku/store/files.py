"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private (0600); ours are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True))


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Write a new version of folder ``final`` into the yielded folder; publish it atomically.

    ``final`` is a symbolic link to a versioned sibling (``.name.<random>``), and publishing is one
    ``rename`` of a new link over it: a reader opening ``final`` sees the old version or the new
    one, complete, never a moment without either. The previous version is kept until the next
    publish, so a reader still loading it does not have files vanish under it. If the body raises,
    the staged folder is removed and ``final`` is untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    _publish(staged, final)


def _publish(staged: Path, final: Path) -> None:
    previous = os.readlink(final) if final.is_symlink() else None
    if final.exists() and not final.is_symlink():
        # A plain folder from an older layout: move it aside once (not atomic, one time only).
        os.replace(final, final.with_name(f".{final.name}.legacy"))
    link = final.with_name(f".{final.name}.link")
    link.unlink(missing_ok=True)
    os.symlink(staged.name, link)
    os.replace(link, final)
    keep = {staged.name, previous}
    for old in final.parent.glob(f".{final.name}.*"):
        if old.name not in keep and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
