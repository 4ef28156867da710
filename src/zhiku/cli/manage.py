"""``zhiku drop`` (delete a whole knowledge base), ``zhiku check`` (do the catalog and indexes
agree?) and ``zhiku ingest --rechunk``."""

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
    p = sub.add_parser(
        "check",
        parents=[common],
        help="check that the catalog, every index and the uploads agree (exit 1 if not)",
        description="Compare the catalog with every built index (chunk ids, fingerprints) and the "
        "uploads folder, and look for what a killed writer left. Read-only; exit status 1 when "
        "anything disagrees.",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_check)


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


def run_check(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        report = kb.check()
    if args.json:
        print_json(report.to_json())
    else:
        state = "ok" if report.ok else f"{len(report.problems)} problems"
        indexes = ", ".join(f"{m} {s}" for m, s in report.indexes.items()) or "none"
        counts = f"{report.documents} documents, {report.chunks} chunks"
        print(f"{report.kb}: {state}; {counts}; indexes: {indexes}")
        for line in report.problems:
            print(f"problem: {line}")
        for line in report.notes:
            print(f"note: {line}")
    return 0 if report.ok else 1


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
