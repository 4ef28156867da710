"""Opening ZIP-based documents (xlsx, pptx, epub, docx): the one place a ZIP is let in.

Office files and EPUBs are ZIP packages, and a ZIP can be a bomb (a few KB that inflate to many GB).
Every ZIP-based loader opens its bytes through ``open_package`` first, so one guard here covers all
of them.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from zhiku.errors import CorruptFileError

OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def open_package(path: Path, data: bytes, what: str, old_format: str = "") -> zipfile.ZipFile:
    """``data`` as an open ZipFile, or CorruptFileError naming what the file really is.

    ``what``: the expected kind ("an Excel workbook (.xlsx)"); ``old_format``: the pre-2007 binary
    format that is the usual impostor under this extension (".xls"), named in the error.
    """
    if data.startswith(OLE_MAGIC) and old_format:
        raise CorruptFileError(
            f"{path} is an old binary Office file ({old_format}), not {what}",
            f"open it in Office (or LibreOffice) and save it as {path.suffix.lower()}",
        )
    if not data.startswith(b"PK\x03\x04"):
        raise CorruptFileError(
            f"{path} is not {what} (not a ZIP package)",
            "check what the file really is, or rename it with its real extension",
        )
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CorruptFileError(
            f"{path} is a damaged ZIP package: {e}", "save it again from its application"
        ) from e
    # >>> ZIP-BOMB GUARD GOES HERE (the only call site): e.g.
    #     zipsafe.check(package, path)   # from zhiku.ingest.loaders.zipsafe (another branch)
    # It must raise an IngestError before any member is inflated. <<<
    return package
