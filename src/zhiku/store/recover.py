"""Put a knowledge base back in order after a crash (kill -9, power loss), under the writer lock.

The catalog itself needs nothing (SQLite transactions leave whole documents only). What a killed
process can leave around it, and what this does about it:

- ``runs`` rows still "running": marked "interrupted" (the writer lock proves nobody runs them).
- half-built index folders ``indexes/.<method>.<random>`` (no manifest: a build that never
  finished) and stray ``.<method>.link`` symlinks: removed. Complete previous versions stay, for
  readers that may still be loading them.
- upload staging folders ``uploads/.staging/<id>`` whose owner process is dead: a file the dead job
  moved aside (``.previous.<name>``) is put back where the catalog still holds it; then removed.
- files in ``uploads/`` the catalog never took in (placed, then killed before the ingest stored
  them): removed, so the folder matches the catalog. Files are placed only by a writer holding the
  lock (the server's writer session, ``api/writer_process.py``), so uploads still waiting in
  staging (their owner alive) do not stop this.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.ids import content_hash
from zhiku.store.catalog import Catalog
from zhiku.store.layout import KBLayout
from zhiku.store.liveness import pid_alive

OWNER_FILE = ".owner"


@dataclass
class Recovery:
    runs: int = 0
    index_folders: list[str] = field(default_factory=list)
    staging: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    stray_uploads: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.runs or self.index_folders or self.staging or self.restored or self.stray_uploads)


def recover(layout: KBLayout, catalog: Catalog) -> Recovery:
    """Repair what a crashed writer left; the caller holds ``layout.writer_lock()``."""
    rec = Recovery()
    rec.runs = catalog.interrupt_running_runs()
    _clean_indexes(layout.indexes, rec)
    _clean_uploads(layout.root.resolve() / "uploads", catalog, rec)
    return rec


def recover_home(home: Path) -> dict[str, Recovery]:
    """``recover`` every knowledge base under ``home`` that no other process is writing (server start)."""
    from zhiku.errors import LockedError, ZhikuError

    done: dict[str, Recovery] = {}
    if not home.is_dir():
        return done
    for root in sorted(home.iterdir()):
        layout = KBLayout(root)
        if not layout.exists():
            continue
        try:
            with layout.writer_lock():
                catalog = Catalog(layout.catalog)
                try:
                    done[layout.name] = recover(layout, catalog)
                finally:
                    catalog.close()
        except LockedError:
            continue  # its writer is alive; it (or the next writer) recovers
        except ZhikuError:
            continue  # a damaged catalog says so when the KB is used, with how to fix it
    return done


def stray_index_entries(indexes: Path) -> list[tuple[Path, str]]:
    """What a killed build leaves in ``indexes/``: ``(entry, "link")`` for a stray link of a swap,
    ``(entry, "half-built")`` for a staged folder never published. Recovery removes them;
    ``zhiku check`` reports them (one rule, so the two never disagree)."""
    if not indexes.is_dir():
        return []
    out: list[tuple[Path, str]] = []
    for entry in sorted(indexes.iterdir()):
        if not entry.name.startswith("."):
            continue
        if entry.name.endswith(".link") and entry.is_symlink():
            out.append((entry, "link"))
        elif entry.is_dir() and not entry.is_symlink() and not (entry / "manifest.json").exists():
            # A published version always has its manifest (it is written last, before the swap).
            out.append((entry, "half-built"))
    return out


def _clean_indexes(indexes: Path, rec: Recovery) -> None:
    for entry, kind in stray_index_entries(indexes):
        if kind == "link":
            entry.unlink(missing_ok=True)
        else:
            shutil.rmtree(entry, ignore_errors=True)
        rec.index_folders.append(entry.name)


#: a staging folder without its owner file younger than this is being made, not abandoned
BEING_MADE_SECONDS = 60


def owner_alive(folder: Path) -> bool:
    try:
        pid = int((folder / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        # No owner recorded: staged by a version that did not record one, or half-made by a killed
        # upload, or being made right now (the owner file is written just after the folder). The
        # soak caught a recovery removing such a folder under a running upload (a 500): a young
        # one is left alone; a later recovery removes it if it stays ownerless.
        try:
            return time.time() - folder.stat().st_mtime < BEING_MADE_SECONDS
        except OSError:
            return False
    return pid_alive(pid)


def _clean_uploads(uploads: Path, catalog: Catalog, rec: Recovery) -> None:
    staging = uploads / ".staging"
    if staging.is_dir():
        for folder in sorted(staging.iterdir()):
            if owner_alive(folder):
                continue
            for backup in folder.glob(".previous.*"):
                final = uploads / backup.name[len(".previous.") :]
                held = catalog.content_hash_of(str(final))
                if held is not None and _digest(final) != held and _digest(backup) == held:
                    os.replace(backup, final)
                    rec.restored.append(final.name)
            shutil.rmtree(folder, ignore_errors=True)
            rec.staging.append(folder.name)
        try:
            staging.rmdir()
        except OSError:
            pass
    if not uploads.is_dir():
        return
    for f in sorted(uploads.iterdir()):
        if f.name.startswith(".") or not f.is_file() or f.is_symlink():
            continue
        if catalog.content_hash_of(str(f)) is None:
            f.unlink(missing_ok=True)
            rec.stray_uploads.append(f.name)


def _digest(path: Path) -> str | None:
    try:
        return content_hash(path.read_bytes())
    except OSError:
        return None
