"""Excel workbooks (.xlsx) via openpyxl, read-only: each sheet a section, its rows a Markdown table.

The sheet name becomes a ``#`` heading, so a chunk's heading path names its sheet, and the sheet's
number is recorded as the chunk's page. Cached formula results are read (``data_only``): a formula
string says nothing a reader asked about.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from zhiku.errors import CorruptFileError, DependencyMissingError
from zhiku.ingest.loaders import LOADERS, LoadOptions, LoadedText
from zhiku.ingest.loaders.packages import open_package
from zhiku.ingest.loaders.tables import markdown_table


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    open_package(path, data, "an Excel workbook (.xlsx)", old_format=".xls").close()
    try:
        import openpyxl
    except ImportError as e:
        raise DependencyMissingError(
            f"reading {path} needs openpyxl", "pip install 'zhiku[documents]'"
        ) from e

    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    offset = 0
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            title = (book.properties.title or "").strip()
            for number, sheet in enumerate(book.worksheets, start=1):
                table = markdown_table([_value(v) for v in row] for row in sheet.iter_rows(values_only=True))
                if not table:
                    continue
                part = f"# {sheet.title}\n\n{table}"
                pages.append((offset, number))
                parts.append(part)
                offset += len(part) + 2
        finally:
            book.close()
    except Exception as e:
        # openpyxl raises KeyError, InvalidFileException, XML errors ... on damaged packages.
        raise CorruptFileError(
            f"{path} is not a readable .xlsx workbook: {e}", "open it in Excel and save it again as .xlsx"
        ) from e
    return LoadedText("\n\n".join(parts), title or path.stem, "xlsx", tuple(pages))


def _value(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 2023.0 is how Excel stores the year 2023
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return value


LOADERS.add(".xlsx", load)
