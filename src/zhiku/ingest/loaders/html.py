"""HTML (.html, .htm) to Markdown-flavoured text with the standard library's parser.

Headings become ``#`` lines and block elements become line breaks, so the chunker sees the same
structure it sees in Markdown; scripts, styles and the document head are dropped.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from pathlib import Path

from zhiku.ingest.loaders import LOADERS, LoadedText, LoadOptions
from zhiku.ingest.loaders.tables import markdown_table
from zhiku.ingest.loaders.text import decode_text, sniff_binary

_SKIP = frozenset({"script", "style", "noscript", "template"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
# Elements that start a new paragraph (blank line) or just a new line.
_PARAGRAPH = frozenset(
    "p pre blockquote table ul ol dl section article header footer main nav aside figure form hr".split()
)
_LINE = frozenset("div li tr dt dd figcaption caption address".split())
_CELLS = frozenset({"td", "th"})

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Labels pages declare that browsers read as a superset (WHATWG Encoding Standard), so text that
# only the superset can decode still works.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    parser = _TextExtractor()
    parser.feed(_decode_html(data, path))
    parser.close()
    return LoadedText(text=parser.text(), title=parser.title() or path.stem, format="html")


def _decode_html(data: bytes, path: Path) -> str:
    sniff_binary(data, path)
    # A BOM wins over <meta charset>, as in browsers; decode_text handles BOMs.
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        match = _META_CHARSET.search(data[:4096])
        if match:
            label = match.group(1).decode("ascii").lower()
            try:
                encoding = codecs.lookup(_CHARSET_ALIASES.get(label, label)).name
                return data.decode(encoding).replace("\r\n", "\n")
            except (LookupError, UnicodeDecodeError):
                pass  # A wrong or unknown declaration is common; guessing is the better fallback.
    return decode_text(data, path)


class _TextExtractor(HTMLParser):
    """Collects text; block boundaries are kept as *pending* line breaks.

    A break is only written before the next text, as the largest one requested since, so nested
    and adjacent blocks (``</li><li>``, ``</p></div>``) never pile up blank lines, and a heading or
    list item with no text leaves no stray ``#`` or ``-``.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # Entities arrive already unescaped.
        self._out: list[str] = []
        self._pending = 0  # newlines owed before the next text
        self._prefix = ""  # "# " or "- ", written with the next text
        self._title: list[str] = []
        self._first_h1: list[str] = []
        self._skip = 0
        self._pre = 0
        self._in_head = False
        self._in_title = False
        self._in_h1 = False
        self._cells_in_row = 0  # cells outside any <table> (broken markup) still get " | "
        # Tables are collected cell by cell and written as one Markdown table at </table>; a table
        # nested in a cell is flattened into that cell's text.
        self._table_depth = 0
        self._rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def _table_start(self, tag: str) -> bool:
        """Handle a start tag inside a table; True when it was consumed."""
        if tag == "table":
            self._table_depth += 1
            if self._table_depth == 1:
                self._block(tag)
                self._rows, self._cell = [], None
                return True
        if not self._table_depth or self._skip:
            return False
        if self._table_depth == 1 and tag == "tr":
            self._rows.append([])
            self._cell = None
        elif self._table_depth == 1 and tag in _CELLS:
            if not self._rows:
                self._rows.append([])
            self._cell = []
            self._rows[-1].append("")
        elif self._cell is not None:
            self._cell.append(" ")
        return self._table_depth >= 1

    def _table_end(self, tag: str) -> bool:
        if not self._table_depth:
            return False
        if tag == "table":
            self._table_depth -= 1
            if self._table_depth == 0:
                self._close_cell()
                table = markdown_table(self._rows)
                if table:
                    self._break(2)
                    self._emit(table)
                    self._break(2)
                self._rows = []
            return True
        if self._table_depth == 1 and tag in _CELLS | {"tr"}:
            self._close_cell()
        elif self._cell is not None:
            self._cell.append(" ")
        return not self._skip

    def _close_cell(self) -> None:
        if self._cell is not None and self._rows:
            self._rows[-1][-1] = "".join(self._cell)
        self._cell = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP and self._table_start(tag):
            return
        if tag in _SKIP:
            self._skip += 1
        elif tag == "head":
            self._in_head = True
        elif tag == "body":
            self._in_head = False
        elif tag == "title":
            self._in_title = True
        elif tag in _HEADINGS:
            self._break(2)
            self._prefix = "#" * _HEADINGS[tag] + " "
            self._in_h1 = tag == "h1" and not self._first_h1
        elif tag in _CELLS:
            if self._cells_in_row:
                self._emit(" | ")
            self._cells_in_row += 1
        elif tag == "br":
            # <br><br> is how many pages separate paragraphs, so consecutive ones add up.
            self._pending = min(self._pending + 1, 2)
        else:
            self._block(tag)
            if tag == "pre":
                self._pre += 1
            elif tag == "li":
                self._prefix = "- "
            elif tag == "tr":
                self._cells_in_row = 0

    def handle_endtag(self, tag: str) -> None:
        if tag not in _SKIP and self._table_end(tag):
            return
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "head":
            self._in_head = False
        elif tag == "title":
            self._in_title = False
        elif tag in _HEADINGS:
            self._break(2)
            self._prefix = ""
            self._in_h1 = False
        elif tag not in _CELLS and tag != "br":
            self._block(tag)
            self._prefix = ""  # an empty <li> leaves no "- " for the next block
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        elif self._skip or self._in_head:
            return
        elif self._cell is not None:
            self._cell.append(data)
        elif self._pre:
            self._emit(data)
        else:
            # Outside <pre>, HTML collapses any run of whitespace to one space, and a space at
            # the start of a line is not shown.
            text = _SPACES.sub(" ", data)
            if self._pending or not self._out or self._out[-1].endswith((" ", "\n")):
                text = text.lstrip(" ")
            if text:
                self._emit(text)
                if self._in_h1:
                    self._first_h1.append(text)

    def _block(self, tag: str) -> None:
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)

    def _break(self, newlines: int) -> None:
        self._pending = max(self._pending, newlines)

    def _emit(self, text: str) -> None:
        if self._pending and self._out:
            self._out.append("\n" * self._pending)
        self._pending = 0
        self._out.append(self._prefix + text)
        self._prefix = ""

    def title(self) -> str:
        for parts in (self._title, self._first_h1):
            title = _SPACES.sub(" ", "".join(parts)).strip()
            if title:
                return title
        return ""

    def text(self) -> str:
        # Only trailing spaces go: leading ones are already dropped outside <pre>, and inside
        # <pre> they are code indentation worth keeping.
        lines = [line.rstrip() for line in "".join(self._out).split("\n")]
        # Newlines inside <pre> can still meet a block break: keep at most one blank line.
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


LOADERS.add(".html", load)
LOADERS.add(".htm", load)
