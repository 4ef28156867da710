"""Tables as Markdown: one header row, a ``| --- |`` rule, then one line per row.

Every loader that finds a table (DOCX, HTML, PDF, XLSX, CSV) writes it through ``markdown_table``,
so the chunker can recognise a table by its lines and keep rows whole, repeating the header row in
every chunk that continues a table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_SPACES = re.compile(r"\s+")


def cell_text(value: object) -> str:
    """One cell on one line: whitespace squeezed, a literal ``|`` escaped so columns stay put."""
    if value is None:
        return ""
    return _SPACES.sub(" ", str(value)).strip().replace("|", "\\|")


def markdown_table(rows: Iterable[Sequence[object]]) -> str:
    """The rows as a Markdown table; the first non-empty row is the header. "" when all are empty.

    Short rows are padded, so every line has the same number of columns.
    """
    cells = [[cell_text(v) for v in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    width = max(len(row) for row in cells)
    # Trailing columns that are empty in every row are layout, not data.
    while width > 1 and all(len(row) < width or not row[width - 1] for row in cells):
        width -= 1
    lines = []
    for i, row in enumerate(cells):
        padded = (list(row) + [""] * width)[:width]
        lines.append("| " + " | ".join(padded) + " |")
        if i == 0:
            lines.append("|" + " --- |" * width)
    return "\n".join(lines)
