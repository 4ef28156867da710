"""Helpers shared by the command modules: opening the KB, progress bars, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zhiku.service import KnowledgeBase
    from zhiku.types import Hit


def open_kb(args: argparse.Namespace, create: bool = False) -> KnowledgeBase:
    from zhiku.service import KnowledgeBase

    return KnowledgeBase.open(args.kb, home=Path(args.home) if args.home else None, create=create)


def show_progress() -> bool:
    import os

    return sys.stderr.isatty() or os.environ.get("ZHIKU_PROGRESS") == "1"


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


class FileBar:
    """tqdm bar over files, with the chunk count as a postfix (for ingest)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.chunks = 0

    def start(self, total_files: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total_files, unit="file", desc="ingest", file=sys.stderr, dynamic_ncols=True)

    def advance(self, files: int = 1, chunks: int = 0) -> None:
        self.chunks += chunks
        if self.bar is not None:
            self.bar.update(files)
            if chunks:
                self.bar.set_postfix(chunks=self.chunks, refresh=False)

    def pages(self, source: str, done: int, total: int) -> None:
        """OCR pages of the file being read: shown beside the bar, which counts files."""
        if self.bar is not None:
            self.bar.set_postfix(chunks=self.chunks, ocr=f"{Path(source).name} p. {done}/{total}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class PhaseBar:
    """One tqdm bar per phase: each method being built, each evaluation step."""

    def __init__(self, unit: str = "chunk", prefix: str = "build ", leave: bool = True) -> None:
        self.unit, self.prefix, self.leave = unit, prefix, leave
        self.bar: Any = None

    def start(self, label: str, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            unit=self.unit,
            desc=self.prefix + label,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=self.leave,
        )

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def hit_json(rank: int, h: Hit) -> dict[str, Any]:
    return h.to_json(rank)
