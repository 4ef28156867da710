"""File loaders: one per format, chosen by file extension.

``load_file`` owns everything the formats share (existence, the size limit, empty files), so each
loader is a small function ``(path, data) -> LoadedText`` over bytes that were already checked.
Loaders for PDF and Word import their libraries on first use, so importing this package stays cheap.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhiku.errors import EmptyFileError, FileTooLargeError, IngestError, NotFoundError, UnsupportedFormatError
from zhiku.registry import Registry


@dataclass(frozen=True)
class LoadedText:
    """The text of one file. ``format``: "text", "markdown", "html", "pdf" or "docx"."""

    text: str
    title: str
    format: str


Loader = Callable[[Path, bytes], LoadedText]

# Imported after LoadedText is defined, because every loader module imports it from here.
from zhiku.ingest.loaders import docx, html, markdown, pdf, text  # noqa: E402

LOADERS: Registry[Loader] = Registry("file extension")
for _suffix, _loader in {
    ".txt": text.load,
    ".md": markdown.load,
    ".markdown": markdown.load,
    ".html": html.load,
    ".htm": html.load,
    ".pdf": pdf.load,
    ".docx": docx.load,
}.items():
    LOADERS.add(_suffix, _loader)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(LOADERS.names())


def load_file(path: Path, max_bytes: int) -> LoadedText:
    """Read ``path`` with the loader for its extension.

    Raises UnsupportedFormatError, NotFoundError, FileTooLargeError, EmptyFileError,
    CorruptFileError or DecodeError, each naming the file, with a hint on how to fix it.
    """
    return load_bytes(path, read_checked(path, max_bytes))


def read_checked(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, after every check that needs no parsing (type, size, emptiness)."""
    try:
        # stat before reading: an oversized file is refused without being read into memory.
        info = path.stat()
    except FileNotFoundError:
        raise NotFoundError(f"file not found: {path}", "check the path") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise IngestError(f"{path} is a symbolic link loop (it leads back to itself)",
                              "remove the link or point it at a real file") from e
        raise IngestError(f"cannot access {path}: {e.strerror or e}", "check the file's permissions") from e
    if stat.S_ISDIR(info.st_mode):
        raise NotFoundError(f"{path} is a directory, not a file", "pass a file, or ingest the folder")
    if not stat.S_ISREG(info.st_mode):
        # Reading a FIFO or a device could block forever or never end.
        raise NotFoundError(f"{path} is not a regular file", "pass a regular file")
    size = info.st_size
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        raise UnsupportedFormatError(
            f"cannot ingest {path}: unsupported file extension {suffix or '(none)'!r}",
            f"supported extensions: {', '.join(LOADERS.names())}",
        )
    if size > max_bytes:
        raise FileTooLargeError(
            f"{path} is {_megabytes(size)}, over the {_megabytes(max_bytes)} limit",
            "raise ingest.max_file_mb in zhiku.toml or split the file",
        )
    if size == 0:
        raise EmptyFileError(f"{path} is empty", "add some text to it, or remove it from the folder")

    try:
        with path.open("rb") as f:
            # Read at most one byte past the limit, in case the file grew since stat.
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise IngestError(f"cannot read {path}: {e.strerror or e}", "check the file's permissions") from e
    if len(data) > max_bytes:
        raise FileTooLargeError(
            f"{path} is over the {_megabytes(max_bytes)} limit",
            "raise ingest.max_file_mb in zhiku.toml or split the file",
        )
    return data


def load_bytes(path: Path, data: bytes) -> LoadedText:
    """Parse bytes already read (and checked) from ``path``."""
    loaded = LOADERS.get(path.suffix.lower())(path, data)
    if not loaded.text.strip():
        raise EmptyFileError(f"{path} contains no text", "add some text to it, or remove it from the folder")
    return loaded


def _megabytes(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{mb:.1f} MB" if mb >= 0.1 else f"{mb:.4f} MB"
