"""File loaders: one per format, chosen by file extension.

``load_file`` owns everything the formats share (existence, the size limit, empty files), so each
loader is a small function ``(path, data, options) -> LoadedText`` over bytes that were already
checked. Loaders register their extensions in ``LOADERS`` when the registry first loads them
(``zhiku.builtins``) and import their parsers (PDF, Office, OCR) on first use, so importing this
package stays cheap.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.errors import EmptyFileError, FileTooLargeError, IngestError, NotFoundError, UnsupportedFormatError
from zhiku.registry import Registry


@dataclass(frozen=True)
class LoadedText:
    """The text of one file. ``format``: the loader's name ("text", "markdown", "pdf", "xlsx", ...).

    ``pages`` places the text: ``(offset, number)`` pairs, ascending by offset, meaning "from
    ``text[offset:]`` on, this is page (or slide, or sheet) ``number``" (1-based). Loaders join
    pages with a blank line, so a page always starts a paragraph. ``warnings`` are one-line notes
    on parts that were skipped (a page OCR could not read), reported without failing the file.
    """

    text: str
    title: str
    format: str
    pages: tuple[tuple[int, int], ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadOptions:
    """What a KB's settings tell loaders (``[ingest]`` in zhiku.toml); the defaults suit a CLI run.

    ``on_page(done, total)`` is called as slow pages (OCR) finish, so a caller can draw progress.
    """

    ocr: bool = True
    json_text_field: str = "text"
    json_title_field: str = "title"
    on_page: Callable[[int, int], None] | None = field(default=None, compare=False)


Loader = Callable[[Path, bytes, LoadOptions], LoadedText]

#: file extension (".md") -> loader; each loader module registers its own extensions (zhiku.builtins)
LOADERS: Registry[Loader] = Registry("loader", "file extension")


def supported_extensions() -> frozenset[str]:
    return frozenset(LOADERS.names())


def load_file(path: Path, max_bytes: int, options: LoadOptions | None = None) -> LoadedText:
    """Read ``path`` with the loader for its extension.

    Raises UnsupportedFormatError, NotFoundError, FileTooLargeError, EmptyFileError,
    CorruptFileError or DecodeError, each naming the file, with a hint on how to fix it.
    """
    return load_bytes(path, read_checked(path, max_bytes), options)


def read_checked(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, after every check that needs no parsing (type, size, emptiness)."""
    try:
        # stat before reading: an oversized file is refused without being read into memory.
        info = path.stat()
    except FileNotFoundError:
        raise NotFoundError(f"file not found: {path}", "check the path") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise IngestError(
                f"{path} is a symbolic link loop (it leads back to itself)",
                "remove the link or point it at a real file",
            ) from e
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


def load_bytes(path: Path, data: bytes, options: LoadOptions | None = None) -> LoadedText:
    """Parse bytes already read (and checked) from ``path``."""
    loaded = LOADERS.get(path.suffix.lower())(path, data, options or LoadOptions())
    if not loaded.text.strip():
        raise EmptyFileError(f"{path} contains no text", "add some text to it, or remove it from the folder")
    return loaded


def _megabytes(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{mb:.1f} MB" if mb >= 0.1 else f"{mb:.4f} MB"
