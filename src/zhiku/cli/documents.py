"""Commands that change or describe a knowledge base: ingest, delete, list, status, build, kbs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from zhiku.cli.common import FileBar, PhaseBar, open_kb, print_json, show_progress
from zhiku.cli.escape import one_line


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="add or update files and folders (documents, tables, slides, e-books, scans)",
    )
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument(
        "--rechunk",
        action="store_true",
        help="chunk the stored documents again with the current settings (no files are read)",
    )
    p.add_argument(
        "--keep-missing",
        action="store_true",
        help="keep documents whose files were removed from an ingested folder",
    )
    p.add_argument(
        "--methods",
        metavar="NAMES",
        help="build only these methods now, comma-separated (e.g. bm25, or bm25,dense); recorded in "
        "zhiku.toml, `zhiku build --method NAME` adds another later",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_ingest)

    p = sub.add_parser(
        "delete",
        parents=[common],
        help="remove documents from the catalog and every index (by file or by title)",
        description="Delete one document by its path or id, or every document whose title contains "
        "TEXT (--title): the matches are listed and you are asked to confirm.",
    )
    p.add_argument(
        "doc",
        nargs="?",
        metavar="DOC",
        help="path as shown by `zhiku list`, a path suffix, or the document id",
    )
    p.add_argument(
        "--title",
        metavar="TEXT",
        help="delete the documents whose title contains TEXT (any case), after confirming",
    )
    p.add_argument("--yes", action="store_true", help="with --title: delete without asking")
    p.set_defaults(run=run_delete)

    p = sub.add_parser("list", parents=[common], help="list the documents of a knowledge base")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_list)

    p = sub.add_parser(
        "status", parents=[common], help="show a knowledge base, its methods and whether any index is stale"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_status)

    p = sub.add_parser("build", parents=[common], help="build or rebuild the indexes of retrieval methods")
    p.add_argument(
        "--method",
        action="append",
        dest="methods",
        metavar="NAME",
        help="build this method even if it is off by default (repeatable)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument(
        "--retrain",
        action="store_true",
        help="train Word2Vec/Doc2Vec models anew instead of reusing them (implies --force)",
    )
    p.set_defaults(run=run_build)

    p = sub.add_parser("kbs", parents=[common], help="list the knowledge bases under the home folder")
    p.set_defaults(run=run_kbs)


def _print_build(report: Any) -> None:
    for name, secs in report.built:
        print(f"built {name} in {secs:.1f}s")
    for name, why in report.skipped:
        print(f"skipped {name}: {why}")


def run_ingest(args: argparse.Namespace) -> int:
    if args.rechunk or not args.paths:
        from zhiku.cli.manage import run_rechunk
        from zhiku.errors import UsageError

        if args.paths or not args.rechunk:
            raise UsageError(
                "give the files or folders to ingest, or --rechunk alone",
                "e.g. `zhiku ingest ./docs`, or `zhiku ingest --rechunk` after changing [chunking]",
            )
        return run_rechunk(args)
    for p in args.paths:
        if not Path(p).exists():
            from zhiku.errors import NotFoundError

            raise NotFoundError(f"no such file or folder: {p}", "Check the path")
    with open_kb(args, create=True) as kb:
        bars = show_progress() and not args.json
        report, built = kb.ingest(
            args.paths,
            progress=FileBar() if bars else None,
            prune=not args.keep_missing,
            build_progress=PhaseBar() if bars else None,
            methods=[m for m in (args.methods or "").split(",") if m.strip()] or None,
        )
        if args.json:
            print_json(
                {
                    "kb": kb.name,
                    "added": report.added,
                    "updated": report.updated,
                    "unchanged": len(report.unchanged),
                    "duplicates": [{"path": p, "same_as": o} for p, o in report.duplicates],
                    "removed": report.removed,
                    "failed": [{"path": p, "error": e} for p, e in report.failed],
                    "warnings": report.warnings,
                    "skipped": [{"path": p, "reason": r} for p, r in report.skipped],
                    "chunks": report.chunks,
                    "seconds": round(report.seconds, 3),
                    "built": dict(built.built),
                    "not_built": dict(built.skipped),
                }
            )
        else:
            if not report.changed and not report.failed and not report.duplicates:
                print(f"nothing changed: {len(report.unchanged)} documents already up to date in {kb.name!r}")
            else:
                print(f"{kb.name}: {report.summary()}")
            for _path, err in report.failed:
                print(f"  failed: {one_line(err)}")
            for path, other in report.duplicates[:10]:
                print(f"  already in the KB: {one_line(path)} is the same file as {one_line(other)}")
            if len(report.duplicates) > 10:
                print(f"  … and {len(report.duplicates) - 10} more files already in the KB")
            for warning in report.warnings:
                print(f"  warning: {warning}")
            if report.skipped:
                print(
                    f"  skipped {len(report.skipped)} files of unsupported types, e.g. {Path(report.skipped[0][0]).name}"  # noqa: E501
                )
            _print_build(built)
    return 1 if report.failed else 0


def run_delete(args: argparse.Namespace) -> int:
    from zhiku.errors import UsageError

    if (args.doc is None) == (args.title is None):
        raise UsageError(
            "give a document (path or id) or --title TEXT, not both or neither",
            "e.g. `zhiku delete notes/a.md` or `zhiku delete --title 保险法`",
        )
    if args.title is not None:
        from zhiku.cli.delete_title import run_delete_title

        return run_delete_title(args)
    with open_kb(args) as kb:
        for d in kb.delete(args.doc):
            print(f"deleted {d.source} ({d.n_chunks} chunks)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        docs = kb.documents()
        if args.json:
            print_json(
                [
                    {
                        "id": d.id,
                        "path": d.source,
                        "title": d.title,
                        "format": d.format,
                        "chars": d.chars,
                        "chunks": d.n_chunks,
                        "ingested_at": d.ingested_at,
                    }
                    for d in docs
                ]
            )
            return 0
        for d in docs:
            print(f"{d.id}  {d.format:<8} {d.n_chunks:>5} chunks  {one_line(d.source)}")
        print(f"{len(docs)} documents in {kb.name!r}")
    return 0


#: share of the corpus that may change before `zhiku status` asks to re-run `zhiku tune route`
ROUTE_RECHECK = 0.2


def run_status(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        docs = kb.documents()
        status = kb.status()
        info = {
            "kb": kb.name,
            "path": str(kb.layout.root),
            "documents": len(docs),
            "chunks": kb.chunk_count(),
            "characters": sum(d.chars for d in docs),
            "language": kb.language(),
            "default_method": kb.default_method(),
            "methods": [s.__dict__ for s in status],
            "chunking_stale": kb.chunking_stale(),
            "route": kb.config.route,
        }
        if args.json:
            print_json(info)
            return 0
        print(f"knowledge base {kb.name!r} at {kb.layout.root}")
        print(
            f"  {info['documents']} documents, {info['chunks']} chunks, {info['characters']} characters, "
            f"language {info['language']}, default method {info['default_method']}"
        )
        if info["chunking_stale"]:
            print(
                f"  chunks STALE: settings changed ({info['chunking_stale']}): run `zhiku ingest --rechunk`"
            )
        for s in status:
            if s.parts is not None:  # a fusion: the parts it fuses now, and why any other is not
                fuses = f"fuses {', '.join(s.parts)}" if s.parts else "nothing ready"
                fuses += f", fused by {s.fused_by}" if s.parts and s.fused_by else ""
                state = "fresh" if s.fresh else "STALE" if s.built else "partial" if s.parts else "not ready"
                print(f"  {s.name:<10} {s.kind:<8} {state}  {fuses}" + (f" ({s.reason})" if s.reason else ""))
            elif s.built and s.enabled is not False:
                state = "fresh" if s.fresh else f"STALE (answers from this build; {s.reason})"
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.built_at)) if s.built_at else ""
                size = f", {s.bytes / 1e6:.1f} MB" if s.bytes else ""
                engine = f", engine {s.engine}" if s.engine else ""
                print(f"  {s.name:<10} {s.kind:<8} {state}  {s.chunks} chunks{size}{engine} {when}".rstrip())
            else:
                print(f"  {s.name:<10} {s.kind:<8} not built: {s.reason}")
        route = kb.config.route
        if route:
            print(
                f"  route: {route.get('chosen')} (by `zhiku tune route`, {route.get('decided_at', '')}): "
                f"{route.get('why', '')}"
            )
            then = int(route.get("chunks") or 0)
            if then and abs(kb.chunk_count() - then) > ROUTE_RECHECK * then:
                print(
                    f"  route: decided on {then} chunks, the KB now has {kb.chunk_count()}: "
                    f"re-check it with `zhiku tune route --kb {kb.name}`"
                )
    return 0


def run_build(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        bar = PhaseBar() if show_progress() else None
        if args.retrain:
            report = kb.retrain(args.methods, progress=bar)
            if not report.built:
                print("no Word2Vec/Doc2Vec model to retrain: build one with `zhiku build --method w2v-sg`")
                return 0
        else:
            report = kb.build(args.methods, force=args.force, progress=bar)
        _print_build(report)
        for name in report.fresh:
            print(f"{name} is up to date")
    return 0


def run_kbs(args: argparse.Namespace) -> int:
    from zhiku.home import Home

    home = Home(Path(args.home) if args.home else None)
    names = home.names()
    for n in names:
        print(n)
    if not names:
        print(f"no knowledge bases in {home.root}")
    return 0
