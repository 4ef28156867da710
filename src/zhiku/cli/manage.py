"""``zhiku drop`` (delete a whole knowledge base) and ``zhiku ingest --rechunk``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from zhiku.cli.common import FileBar, PhaseBar, open_kb, print_json, show_progress


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("drop", parents=[common], help="delete a whole knowledge base and everything in it")
    p.add_argument("--yes", action="store_true", help="really delete (without it, only say what would go)")
    p.set_defaults(run=run_drop)


def run_drop(args: argparse.Namespace) -> int:
    from zhiku.errors import NotFoundError, UsageError
    from zhiku.service import resolve_layout

    layout = resolve_layout(args.kb, Path(args.home) if args.home else None)
    if not layout.exists():
        raise NotFoundError(f"no knowledge base {layout.name!r} in {layout.root.parent}", "See `zhiku kbs`")
    with open_kb(args) as kb:
        docs, chunks = len(kb.documents()), kb.chunk_count()
    size = sum(f.stat().st_size for f in layout.root.rglob("*") if f.is_file())
    what = (
        f"knowledge base {layout.name!r} at {layout.root}: {docs} documents, {chunks} chunks, "
        f"{size / 1e6:.1f} MB"
    )
    if not args.yes:
        raise UsageError(
            f"this would delete {what}", f"Run `zhiku drop --kb {layout.name} --yes` to delete it"
        )
    # The writer lock: an ingest running now fails our drop instead of writing into a deleted folder.
    with layout.writer_lock():
        for entry in layout.root.iterdir():
            if entry.name != ".lock":
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    shutil.rmtree(layout.root, ignore_errors=True)
    print(f"deleted {what}")
    return 0


def run_rechunk(args: argparse.Namespace) -> int:
    """``zhiku ingest --rechunk``: chunk the stored documents again with the current settings."""
    with open_kb(args) as kb:
        stale = kb.chunking_stale()
        bars = show_progress() and not args.json
        files: Any = FileBar() if bars else None  # the CLI's bars speak Progress and BuildProgress
        indexes: Any = PhaseBar() if bars else None
        report, built = kb.rechunk(files, indexes)
        if args.json:
            print_json(
                {
                    "kb": kb.name,
                    "rechunked": len(report.updated),
                    "chunks": report.chunks,
                    "seconds": round(report.seconds, 3),
                    "built": dict(built.built),
                    "settings_changed": stale,
                }
            )
            return 0
        print(
            f"{kb.name}: re-chunked {len(report.updated)} documents from the stored text "
            f"({report.chunks} chunks, {report.seconds:.1f}s)" + (f"; settings: {stale}" if stale else "")
        )
        for name, secs in built.built:
            print(f"built {name} in {secs:.1f}s")
    return 0
