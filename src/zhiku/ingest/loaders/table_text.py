"""Delimited text tables (.csv, .tsv): decoded like .txt, then written as one Markdown table.

The first row is taken as the header, which the chunker repeats in every chunk of the table, so
a row found alone still says what its columns are.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from zhiku.errors import CorruptFileError
from zhiku.ingest.loaders import LOADERS, LoadOptions, LoadedText
from zhiku.ingest.loaders.tables import markdown_table
from zhiku.ingest.loaders.text import decode_text

# csv's own limit is 128 KB; a cell longer than this is not a table any more.
_FIELD_LIMIT = 1_000_000


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    text = decode_text(data, path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff(text)
    csv.field_size_limit(_FIELD_LIMIT)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as e:
        raise CorruptFileError(
            f"{path} is not a readable {path.suffix.lower()} table: {e}", "check its quoting"
        ) from e
    return LoadedText(markdown_table(rows), path.stem, path.suffix.lower().lstrip("."))


def _sniff(text: str) -> str:
    """Comma, or the one of ``;`` / tab / ``|`` that Excel exports in some locales."""
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


LOADERS.add(".csv", load)
LOADERS.add(".tsv", load)
