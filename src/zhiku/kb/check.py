"""``zhiku check``: does the catalog agree with itself, with every built index and with the uploads
folder? Read-only: it reports, and leaves repairs to the next writer (``store/recover.py``) or a
rebuild.

What counts as a problem (the KB is not as its writers left it when they finished):
- the catalog: SQLite's own check fails, chunks without a document, a fingerprint its chunks
  disagree with;
- an index whose manifest vouches for this catalog (same fingerprint) but holds other chunk ids, or
  whose id list disagrees with its own manifest, or cannot be read, or has no manifest;
- leftovers of a killed writer, when no writer runs now: half-built index folders, upload staging
  folders whose owner is dead, uploaded files the catalog never took in, runs still "running".
An index built from an older catalog is not a problem: it is stale, and rebuilt before its next
search (``kb/indexes.py``); it is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.errors import LockedError
from zhiku.store.catalog import fingerprint_of
from zhiku.store.recover import owner_alive, stray_index_entries

if TYPE_CHECKING:
    from zhiku.kb.core import Facade as KnowledgeBase
    from zhiku.kb.methods import MethodSet


@dataclass
class CheckReport:
    kb: str
    documents: int = 0
    chunks: int = 0
    #: method -> "fresh", "stale", "not built" or "broken"
    indexes: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "kb": self.kb,
            "ok": self.ok,
            "documents": self.documents,
            "chunks": self.chunks,
            "indexes": self.indexes,
            "problems": self.problems,
            "notes": self.notes,
        }


def check_kb(kb: KnowledgeBase, methods: MethodSet) -> CheckReport:
    report = CheckReport(kb=kb.name)
    catalog = kb.catalog
    report.documents = len(catalog.documents())
    ids = catalog.chunk_ids()
    report.chunks = len(ids)
    report.problems += [f"catalog: {p}" for p in catalog.problems()]
    for name in _indexed(methods):
        report.indexes[name] = _check_index(kb, methods, name, ids, report)
    try:
        # Holding the writer lock (without waiting) proves no writer is at work, so what a writer
        # leaves while it works (staging, half-built folders, a running run) is a leftover.
        with kb.layout.writer_lock():
            _leftovers(kb, report)
    except LockedError:
        report.notes.append("a writer is at work now: its work in progress was not checked")
    return report


def _indexed(methods: MethodSet) -> list[str]:
    seen: list[str] = []
    for name in methods.names():
        for part in methods.indexed_parts(name):
            if part not in seen:
                seen.append(part)
    return seen


def _check_index(kb: KnowledgeBase, methods: MethodSet, name: str, ids: set[str], report: CheckReport) -> str:
    folder = kb.layout.index_dir(name)
    manifest = methods.manifest(name)
    if manifest is None:
        if folder.exists():
            report.problems.append(f"index {name}: no readable manifest.json (a build that never finished)")
            return "broken"
        return "not built"
    try:
        stored = methods.get(name).stored_ids(folder)
    except (OSError, ValueError) as e:
        report.problems.append(f"index {name}: its chunk ids cannot be read ({e})")
        return "broken"
    recorded = manifest.get("fingerprint")
    if stored is not None:
        if len(set(stored)) != len(stored):
            report.problems.append(f"index {name}: holds {len(stored) - len(set(stored))} chunk ids twice")
        if fingerprint_of(stored) != recorded:
            report.problems.append(
                f"index {name}: its chunk ids ({len(stored)}) disagree with its own manifest ({recorded})"
            )
            return "broken"
    if recorded != kb.catalog.fingerprint():
        report.notes.append(f"index {name}: built from an older catalog; rebuilt before its next search")
        return "stale"
    if stored is not None and set(stored) != ids:
        missing, extra = len(ids - set(stored)), len(set(stored) - ids)
        report.problems.append(
            f"index {name}: vouches for this catalog but lacks {missing} of its chunks "
            f"and holds {extra} chunks the catalog does not"
        )
        return "broken"
    if not methods.is_fresh(name, manifest):
        report.notes.append(f"index {name}: built with other settings; rebuilt before its next search")
        return "stale"
    return "fresh"


def _leftovers(kb: KnowledgeBase, report: CheckReport) -> None:
    catalog = kb.catalog
    if running := catalog.running_runs():
        report.problems.append(f"catalog: {running} runs still marked running, but no writer is at work")
    for entry, kind in stray_index_entries(kb.layout.indexes):
        what = "a link" if kind == "link" else "a half-built index"
        report.problems.append(f"indexes/{entry.name}: {what} left by a killed build")
    uploads = kb.layout.root.resolve() / "uploads"
    staging = uploads / ".staging"
    if staging.is_dir():
        for folder in sorted(staging.iterdir()):
            if owner_alive(folder):
                report.notes.append(f"uploads/.staging/{folder.name}: an upload waiting for the writer")
            else:
                report.problems.append(f"uploads/.staging/{folder.name}: left by a killed upload")
    # Uploads are placed in uploads/ only by a writer holding the lock (the server's writer
    # session), so with the lock held here a file the catalog lacks is a leftover, even while
    # other uploads wait in staging.
    if uploads.is_dir():
        for f in sorted(uploads.iterdir()):
            if f.is_file() and not f.name.startswith(".") and catalog.content_hash_of(str(f)) is None:
                report.problems.append(f"uploads/{f.name}: a file the catalog never took in")
    for source in catalog.sources():
        path = Path(source)
        if path.parent == uploads and not path.exists():
            report.problems.append(f"uploads/{path.name}: in the catalog, but the file is gone")
