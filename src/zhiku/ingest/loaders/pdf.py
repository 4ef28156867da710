"""PDF (.pdf): the text layer page by page (pypdf), tables as Markdown (pdfplumber), scans by OCR.

A page is read by OCR when its text layer is missing or has almost no characters for its area (a
scanner's "Scanned by ..." stamp on a page image) and it holds an image; OCR can be turned off per
knowledge base (``ingest.ocr``). Pages that pdfplumber finds ruled tables on are rebuilt from
pdfplumber's layout, the tables written as Markdown tables where they stand. Every page's number is
recorded, so a citation says "p. 3"; a page that cannot be read is reported and skipped.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.errors import CorruptFileError, DependencyMissingError, EmptyFileError
from zhiku.ingest.loaders import LOADERS, LoadedText, LoadOptions
from zhiku.ingest.loaders.tables import markdown_table

if TYPE_CHECKING:
    from pypdf import PageObject, PdfReader

# The PDF spec lets a header appear after some leading junk, and real files do that.
_MAGIC_WINDOW = 1024
_REEXPORT_HINT = "open it in a PDF viewer and export it again, or convert it to text"
# Fewer visible characters than this per square inch of page: the text layer is a stamp, not the
# page's text (a full A4 page of Chinese has about 10 per square inch; a stamp, under 0.3).
_SCANNED_CHARS_PER_SQIN = 0.25


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    if b"%PDF-" not in data[:_MAGIC_WINDOW]:
        raise CorruptFileError(
            f"{path} is not a PDF file (no %PDF- header)",
            "check that it really is a PDF, or rename it with its real extension",
        )

    import pypdf
    from pypdf.errors import DependencyError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise CorruptFileError(f"{path} is encrypted", "decrypt it first (e.g. qpdf --decrypt)")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        scanned = [n for n, page in enumerate(reader.pages, start=1) if _looks_scanned(page, pages[n - 1])]
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

    warnings: list[str] = []
    with_text = [n for n in range(1, len(pages) + 1) if pages[n - 1] and n not in scanned]
    for number, text in _table_pages(data, with_text, warnings, path).items():
        pages[number - 1] = text
    if scanned and options.ocr:
        from zhiku.ingest.ocr import ocr_pages, pdf_pages

        for number, result in ocr_pages(pdf_pages(data, scanned), len(scanned), options.on_page):
            if isinstance(result, Exception):
                warnings.append(f"{path} page {number}: OCR failed ({result}); page skipped")
            elif result.strip():
                pages[number - 1] = result.strip()

    parts: list[str] = []
    located: list[tuple[int, int]] = []
    offset = 0
    for number, text in enumerate(pages, start=1):
        if text:
            located.append((offset, number))
            parts.append(text)
            offset += len(text) + 2
    if not parts:
        hint = (
            "its pages are images: set ingest.ocr = true in zhiku.toml to read them with OCR"
            if scanned and not options.ocr
            else "a PDF with no text layer (a scan) needs OCR; this one has no page image to read either"
        )
        raise EmptyFileError(f"{path} has no text layer", hint)
    return LoadedText("\n\n".join(parts), title or path.stem, "pdf", tuple(located), tuple(warnings))


def _looks_scanned(page: PageObject, text: str) -> bool:
    box = page.mediabox
    square_inches = abs(float(box.width) * float(box.height)) / (72 * 72)
    visible = sum(1 for ch in text if not ch.isspace())
    return visible < _SCANNED_CHARS_PER_SQIN * square_inches and _has_image(page)


def _has_image(page: PageObject) -> bool:
    resources = page.get("/Resources")
    if resources is None:
        return False
    xobjects = resources.get_object().get("/XObject")
    # A scan is an image XObject, sometimes wrapped in a form XObject; either counts.
    return xobjects is not None and len(xobjects.get_object()) > 0


def _table_pages(data: bytes, numbers: list[int], warnings: list[str], path: Path) -> dict[int, str]:
    """Pages (of ``numbers``) on which pdfplumber finds tables, rebuilt with Markdown tables."""
    if not numbers:
        return {}
    try:
        import pdfplumber
    except ImportError:
        return {}  # tables stay as the text layer's lines; the rest of the PDF reads the same
    out: dict[int, str] = {}
    last: list[list[Any]] = []  # the previous table's rows, for tables continued on the next page
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for number in numbers:
                page = pdf.pages[number - 1]
                try:
                    tables = page.find_tables()
                    if tables:
                        out[number], last = _with_tables(page, tables, last if number - 1 in out else [])
                except Exception as e:  # pdfminer's layout analysis fails on some odd pages
                    warnings.append(f"{path} page {number}: tables not recognised ({e}); read as text")
                finally:
                    page.close()
    except Exception as e:
        warnings.append(f"{path}: tables not recognised ({e}); read as text")
    return out


def _with_tables(page: Any, tables: list[Any], previous: list[list[Any]]) -> tuple[str, list[list[Any]]]:
    """The page top to bottom: text bands between tables, each table as Markdown, text beside it after.

    Also returns the last table's rows. ``previous`` is the previous page's last table: a table that
    opens this page with as many columns, under a different first row, continues it, so it gets
    that table's header row (a PDF repeats headers on every page only when its author asked).
    """
    x0, top, x1, bottom = page.bbox
    parts: list[str] = []
    rows: list[list[Any]] = []
    y = top
    for i, table in enumerate(sorted(tables, key=lambda t: t.bbox[1])):
        t_top, t_bottom = max(table.bbox[1], y), min(table.bbox[3], bottom)
        above = ""
        if t_top > y:
            above = page.crop((x0, y, x1, t_top)).extract_text() or ""
            parts.append(above)
        rows = _fill_merged(table.extract())
        # A running header ("第 3 页", a report's name) may sit above a continued table.
        if i == 0 and previous and rows and len(above.strip()) < 40:
            if len(rows[0]) == len(previous[0]) and rows[0] != previous[0]:
                rows = [previous[0], *rows]
        parts.append(markdown_table(rows))
        if t_bottom > t_top:
            beside = page.crop((x0, t_top, x1, t_bottom)).outside_bbox(table.bbox).extract_text()
            parts.append(beside or "")
        y = max(y, t_bottom)
    if y < bottom:
        parts.append(page.crop((x0, y, x1, bottom)).extract_text() or "")
    return "\n\n".join(p.strip() for p in parts if p.strip()), rows


def _fill_merged(rows: list[list[Any]]) -> list[list[Any]]:
    """pdfplumber gives ``None`` for the cells a merged cell covers: repeat the merged value there,
    so every row reads whole on its own ("2023年 | 第二季度 | 2237", not " | 第二季度 | 2237")."""
    filled: list[list[Any]] = []
    for r, row in enumerate(rows):
        new = list(row)
        for c, value in enumerate(new):
            if value is None and r > 0 and c < len(filled[r - 1]) and filled[r - 1][c] is not None:
                new[c] = filled[r - 1][c]  # merged down
            elif value is None and c > 0:
                new[c] = ""  # merged across: the value is already in the cell to the left
        filled.append(new)
    return filled


def _metadata_title(reader: PdfReader) -> str:
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    return title.strip() if isinstance(title, str) else ""


LOADERS.add(".pdf", load)
