"""Zip bombs: refuse a ZIP package (docx, xlsx, pptx, epub, ...) that unpacks to too much.

The file-size limit sees only the compressed bytes: a 466 KB .docx can unpack to 100 MB of XML and
hold the ingest (and the KB's writer lock) for minutes. Every member is checked twice before any
parser touches it: its declared size (free, from the central directory) and its actual size,
counted while decompressing in blocks and stopped at the limit, since a forged header can declare
anything.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from zhiku.errors import CorruptFileError, FileTooLargeError

ZIP_MAGIC = b"PK\x03\x04"
_BLOCK = 1 << 20
_HINT = "If the file is genuine, raise ingest.max_unpacked_mb in zhiku.toml"


def is_zip(data: bytes) -> bool:
    return data[:4] == ZIP_MAGIC


def check_zip(path: Path | str, data: bytes, max_unpacked_bytes: int) -> int:
    """The total unpacked size of the ZIP package ``data``; raises FileTooLargeError past the limit.

    Raises CorruptFileError when the package cannot be read at all (the loader would fail anyway,
    with a less precise message).
    """
    limit_mb = f"{max_unpacked_bytes / 2**20:g} MB"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CorruptFileError(
            f"{path} is a damaged ZIP package: {e}", "Save it again in its application"
        ) from e
    with archive:
        members = archive.infolist()
        declared = sum(m.file_size for m in members)
        if declared > max_unpacked_bytes:
            raise FileTooLargeError(
                f"{path} unpacks to {declared / 2**20:.0f} MB, over the {limit_mb} limit "
                f"(possibly a zip bomb)",
                _HINT,
            )
        total = 0
        for m in members:
            try:
                with archive.open(m) as f:
                    while block := f.read(_BLOCK):
                        total += len(block)
                        if total > max_unpacked_bytes:
                            raise FileTooLargeError(
                                f"{path} unpacks to more than {limit_mb} although it declares "
                                f"{declared / 2**20:.1f} MB (a zip bomb)",
                                _HINT,
                            )
            except FileTooLargeError:
                raise
            except (
                zipfile.BadZipFile,
                OSError,
                ValueError,
                EOFError,
                NotImplementedError,
                RuntimeError,
            ) as e:  # RuntimeError: an encrypted member
                raise CorruptFileError(
                    f"{path} has a damaged ZIP member {m.filename!r}: {e}", "Save it again in its application"
                ) from e
    return total
