"""PDF (.pdf): the text layer, page by page, via pypdf (imported on first use).

A scanned PDF has no text layer; it is reported as empty with a hint about OCR rather than
ingested as a document without content.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from zhiku.errors import CorruptFileError, DependencyMissingError, EmptyFileError
from zhiku.ingest.loaders import LoadedText

if TYPE_CHECKING:
    from pypdf import PdfReader

# The PDF spec lets a header appear after some leading junk, and real files do that.
_MAGIC_WINDOW = 1024
_REEXPORT_HINT = "open it in a PDF viewer and export it again, or convert it to text"


def _quiet_pypdf() -> None:
    """pypdf logs what it repairs ("EOF marker not found") as warnings; with no logging set up,
    Python prints them as stray lines under our one-line report. A NullHandler stops that default,
    while an application that configures logging still receives them."""
    logger = logging.getLogger("pypdf")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def load(path: Path, data: bytes) -> LoadedText:
    if b"%PDF-" not in data[:_MAGIC_WINDOW]:
        raise CorruptFileError(
            f"{path} is not a PDF file (no %PDF- header)",
            "check that it really is a PDF, or rename it with its real extension",
        )

    import pypdf
    from pypdf.errors import DependencyError

    _quiet_pypdf()
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise CorruptFileError(f"{path} is encrypted", "decrypt it first (e.g. qpdf --decrypt)")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = _metadata_title(reader)
    except DependencyError as e:
        # AES-encrypted PDFs (even with an empty password) need the optional cryptography package.
        raise DependencyMissingError(
            f"{path} is AES-encrypted and cannot be read without the cryptography package",
            "pip install cryptography",
        ) from e
    except CorruptFileError:
        raise
    except Exception as e:
        # pypdf raises many exception types on damaged files (PdfReadError, ValueError, KeyError,
        # ...); for the user they all mean the same thing.
        raise CorruptFileError(f"{path} is a damaged PDF: {e}", _REEXPORT_HINT) from e

    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise EmptyFileError(
            f"{path} has no text layer",
            "a PDF with no text layer (a scan) needs OCR first, e.g. ocrmypdf in.pdf out.pdf",
        )
    return LoadedText(text=text, title=title or path.stem, format="pdf")


def _metadata_title(reader: PdfReader) -> str:
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    return title.strip() if isinstance(title, str) else ""
