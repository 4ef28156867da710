"""The ``zhiku`` command: parse, call the KnowledgeBase facade, format.

Only argparse is imported to build the parser, so ``zhiku --help`` stays fast; each command group's
module imports what it needs when it runs. Domain errors become one line and an exit code here, in
one place.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence

from zhiku import __version__
from zhiku.cli import chat, documents, manage, query, serve, tune, words
from zhiku.cli import eval as evaluation


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhiku",
        description="知库 zhiku: ask questions of your own documents, in Chinese and English, offline.",
        epilog="Start with: zhiku ingest ./docs && zhiku ask '你的问题'",
    )
    parser.add_argument("--version", action="version", version=f"zhiku {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kb", default="default", help="knowledge base name or folder (default: default)")
    common.add_argument(
        "--home", default=None, help="where knowledge bases live (default: $ZHIKU_HOME or the user data dir)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    documents.register(sub, common)
    query.register(sub, common)
    evaluation.register(sub, common)
    words.register(sub, common)
    chat.register(sub, common)
    serve.register(sub, common)
    manage.register(sub, common)
    tune.register(sub, common)
    return parser


def entry() -> int:
    """The ``zhiku`` command (and ``python -m zhiku``): ``main`` with ``quick_exit``."""
    return main(quick_exit=True)


def main(argv: Sequence[str] | None = None, quick_exit: bool = False) -> int:
    """Run one command. With ``quick_exit`` (the command line, not a caller in Python), a read-only
    command (``quick_exit`` in its defaults: ``search``) ends the process as soon as its output is
    flushed: Python's own clean-up (freeing every module, onnxruntime's session, Faiss's index) cost
    a one-off search ~0.1 CPU-s, an eighth of it, and a read leaves nothing to clean up."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code = _run(parser, args)
    if quick_exit and getattr(args, "quick_exit", False):
        import logging

        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # `zhiku search … | head`: nothing more can be written anyway
            pass
        logging.shutdown()
        os._exit(code)
    return code


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    from zhiku.errors import ZhikuError

    try:
        return int(args.run(args) or 0)
    except ZhikuError as e:
        print(f"error: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(
            "\ninterrupted: whatever was stored is whole documents only; run the same command again to finish",  # noqa: E501
            file=sys.stderr,
        )
        return 130
    except sqlite3.DatabaseError as e:
        # A catalog damaged after it was opened (a truncated page read later): one line, not a traceback.
        from zhiku.errors import catalog_damaged

        err = catalog_damaged("catalog.sqlite", e)
        print(f"error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        # `zhiku search … | head` closed the pipe: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(entry())
