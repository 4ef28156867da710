"""Word (.docx) via python-docx (imported on first use).

Paragraphs and tables are read in document order; "Heading N" and "Title" paragraphs become
Markdown headings, so the chunker sees the document's outline as it does in Markdown, and tables
become Markdown tables (header row first).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from zhiku.errors import CorruptFileError
from zhiku.ingest.loaders import LOADERS, LoadedText, LoadOptions
from zhiku.ingest.loaders.packages import open_package
from zhiku.ingest.loaders.tables import markdown_table

if TYPE_CHECKING:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    # A .docx is a ZIP package; an old binary .doc is the most common impostor, so name it.
    open_package(path, data, "a Word document (.docx)", old_format=".doc").close()

    from docx import Document
    from docx.text.paragraph import Paragraph

    try:
        document = Document(io.BytesIO(data))
        blocks: list[str] = []
        first_heading = ""
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text, level = _paragraph(item)
                if text and level:
                    first_heading = first_heading or text
                    text = "#" * level + " " + text
            else:
                text = _table(item)
            if text:
                blocks.append(text)
        title = (document.core_properties.title or "").strip()
    except Exception as e:
        # python-docx and its zip/lxml layers raise many types (PackageNotFoundError, KeyError,
        # BadZipFile, XMLSyntaxError, ...); for the user they all mean the file is damaged.
        raise CorruptFileError(
            f"{path} is not a readable .docx file: {e}", "open it in Word and save it again as .docx"
        ) from e

    return LoadedText(text="\n\n".join(blocks), title=title or first_heading or path.stem, format="docx")


def _paragraph(paragraph: Paragraph) -> tuple[str, int]:
    """Return the paragraph's text and its heading level (0 for body text)."""
    text = paragraph.text.strip()
    style = paragraph.style.name if paragraph.style is not None else ""
    if style == "Title":
        return text, 1
    match = _HEADING_STYLE.match(style or "")
    # Markdown stops at six levels; Word goes to nine.
    return text, min(int(match.group(1)), 6) if match else 0


def _table(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # A horizontally merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(cell.text)
        rows.append(cells)
    return markdown_table(rows)


LOADERS.add(".docx", load)
