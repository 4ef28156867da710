"""``zhiku delete --title TEXT``: delete every document whose title matches, after confirming.

Titles match as the web API's document search does (``GET /kbs/{kb}/documents?q=``): TEXT is
contained in the title, in any case, and exact matches are listed first. Deleting by title can
remove more than the user meant, so the matches are always listed, and the deletion needs a "y"
typed at a terminal or ``--yes``; without a terminal and without ``--yes`` (a script, a pipe) it
refuses instead of deleting on a guess.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from zhiku.cli.common import open_kb
from zhiku.cli.escape import one_line
from zhiku.types import DocumentInfo


def titled(docs: Sequence[DocumentInfo], text: str) -> list[DocumentInfo]:
    """Documents whose title contains ``text`` (any case), exact matches first, then by title."""
    needle = text.strip().casefold()
    hits = [d for d in docs if needle in d.title.casefold()]
    return sorted(hits, key=lambda d: (d.title.casefold() != needle, d.title, d.source))


def _confirmed(n: int) -> bool:
    try:
        answer = input(f"Delete {'this document' if n == 1 else f'these {n} documents'}? [y/N] ")
    except EOFError:  # Ctrl-D at the prompt is a no
        return False
    return answer.strip().casefold() in ("y", "yes", "是")


def run_delete_title(args: argparse.Namespace) -> int:
    from zhiku.errors import NotFoundError, UsageError

    text = args.title.strip()
    if not text:
        raise UsageError("--title is empty", "Give a part of the title, e.g. --title 保险法")
    with open_kb(args) as kb:
        matches = titled(kb.documents(), text)
        if not matches:
            raise NotFoundError(
                f"no document title contains {text!r} in knowledge base {kb.name!r}",
                "See the titles with `zhiku list --json`",
            )
        print(f"{len(matches)} document{'s' if len(matches) != 1 else ''} titled like {text!r}:")
        for d in matches:
            print(f"  {one_line(d.title)}  ({one_line(d.source)}, {d.n_chunks} chunks)")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"not deleting {len(matches)} documents without confirmation (stdin is not a terminal)",
                    "Check the list above, then run the same command with --yes",
                )
            if not _confirmed(len(matches)):
                print("nothing deleted")
                return 1
        kb.delete_documents_by_id([d.id for d in matches])
        for d in matches:
            print(f"deleted {one_line(d.source)} ({d.n_chunks} chunks)")
    return 0
