"""Structure-aware chunking.

Natural boundaries, strongest first: Markdown headings (a chunk never spans two sections),
paragraphs, article markers of Chinese regulations and contracts (第X条 / 第X章 / 第X节 start a new
block even without a blank line), then sentence ends (。！？；!?. ). Blocks are packed into chunks of
at most ``size`` characters; a block too long on its own is split at sentence ends, and a sentence
too long on its own at ``size``.

Every chunk is a contiguous span ``text[start:end]`` of the stored document text, so a citation
can point at the exact place; its heading path and page travel alongside.

Markdown tables (the loaders write every table that way) are kept by rows: a chunk never cuts a
row, and a chunk that continues a table carries the table's header row as ``prefix``, to be put
before its text, so "第二季度 | 1,234" is still read as 营业收入 of 2023. Page boundaries (from
``pages``) are hard boundaries: a chunk never spans two pages, so "p. 3" is exact.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from zhiku.config import ChunkingConfig

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_ARTICLE = re.compile(r"^[ \t\u3000]*第[零〇一二三四五六七八九十百千万0-9]+[条章节编]")
# A sentence ends after Chinese/English terminators (plus closing quotes/brackets), or at a newline.
_SENT_END = re.compile(r"[。！？；!?;]+[”’\"')）】」』]*|\.(?=\s)|\n")
_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$")
_TABLE_RULE = re.compile(r"^[ \t]*\|(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*$")


@dataclass(frozen=True, slots=True)
class Span:
    """``text[start:end]``; ``prefix``: the table header row(s) to read before it ("" if none)."""

    start: int
    end: int
    heading: str
    page: int = 0
    prefix: str = ""
    table: bool = False


def _blocks(text: str) -> list[Span]:
    """Paragraph-level blocks with their heading path; heading lines themselves are not blocks."""
    blocks: list[Span] = []
    stack: list[tuple[int, str]] = []
    start: int | None = None
    pos = 0

    def close(end: int) -> None:
        nonlocal start
        if start is not None:
            s, e = start, end
            while e > s and text[e - 1].isspace():
                e -= 1
            if e > s:
                blocks.append(Span(s, e, " > ".join(t for _, t in stack)))
        start = None

    in_table = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        m = _HEADING.match(line.rstrip("\n"))
        row = bool(_TABLE_ROW.match(line.rstrip("\n")))
        if m:
            close(pos)
            level = len(m.group(1))
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, m.group(2).strip())]
        elif not stripped:
            close(pos)
        else:
            # A table is a block of its own, even when no blank line separates it from the text.
            if _ARTICLE.match(line) or row != in_table:
                close(pos)
            if start is None:
                start = pos + (len(line) - len(line.lstrip()))
        in_table = row and not m and bool(stripped)
        pos += len(line)
    close(pos)
    return [
        Span(b.start, b.end, b.heading, table=bool(_TABLE_ROW.match(text[b.start : b.end].split("\n", 1)[0])))
        for b in blocks
    ]


def _rows(text: str, span: Span) -> list[Span]:
    """A table block as units of whole rows: the header (with its rule) first, then one per row.

    Each row unit carries the header as its prefix; a row longer than the chunk size stays whole.
    """
    lines: list[Span] = []
    pos = span.start
    for line in text[span.start : span.end].split("\n"):
        if line.strip():
            lines.append(_trim(text, Span(pos, pos + len(line), span.heading, span.page, table=True)))
        pos += len(line) + 1
    header_end = 2 if len(lines) >= 2 and _TABLE_RULE.match(text[lines[1].start : lines[1].end]) else 1
    if len(lines) <= header_end:
        return [span]
    header = Span(lines[0].start, lines[header_end - 1].end, span.heading, span.page, table=True)
    prefix = text[header.start : header.end]
    # The header travels with the first row, so the table's first chunk reads as a table.
    first = Span(header.start, lines[header_end].end, span.heading, span.page, table=True)
    rest = [
        Span(r.start, r.end, r.heading, r.page, prefix=prefix, table=True) for r in lines[header_end + 1 :]
    ]
    return [first, *rest]


def _sentences(text: str, span: Span, size: int) -> list[Span]:
    out: list[Span] = []
    s = span.start
    for m in _SENT_END.finditer(text, span.start, span.end):
        e = m.end()
        if text[s:e].strip():
            out.append(Span(s, e, span.heading, span.page))
        s = e
    if s < span.end and text[s : span.end].strip():
        out.append(Span(s, span.end, span.heading, span.page))
    # A "sentence" longer than the chunk size (a table row, a run-on line) is cut at the size.
    cut: list[Span] = []
    for sp in out:
        for a in range(sp.start, sp.end, size):
            cut.append(Span(a, min(a + size, sp.end), sp.heading, sp.page))
    return [_trim(text, sp) for sp in cut if text[sp.start : sp.end].strip()]


def _trim(text: str, sp: Span) -> Span:
    s, e = sp.start, sp.end
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return Span(s, e, sp.heading, sp.page, sp.prefix, sp.table)


def chunk_text(text: str, config: ChunkingConfig, pages: Sequence[tuple[int, int]] = ()) -> list[Span]:
    """Split ``text`` into chunk spans, in document order.

    ``pages``: ``(offset, page number)`` pairs, ascending, as loaders report them.
    """
    size, overlap = config.size, config.overlap
    starts = [offset for offset, _ in pages]
    units: list[Span] = []
    for block in _blocks(text):
        if pages:
            i = bisect.bisect_right(starts, block.start) - 1
            block = Span(block.start, block.end, block.heading, pages[max(i, 0)][1], table=block.table)
        if block.end - block.start <= size:
            units.append(block)
        elif block.table:
            units.extend(_rows(text, block))
        else:
            units.extend(_sentences(text, block, size))

    chunks: list[Span] = []
    cur: list[Span] = []

    def flush() -> None:
        if cur:
            first = cur[0]
            chunks.append(
                Span(first.start, cur[-1].end, first.heading, first.page, first.prefix, first.table)
            )

    for u in units:
        if cur and (
            u.heading != cur[0].heading
            and (cur[-1].end - cur[0].start) >= config.min_size
            or u.end - cur[0].start + len(cur[0].prefix) > size
            or u.page != cur[0].page
        ):
            flush()
            carry: list[Span] = []
            if overlap and u.heading == cur[-1].heading and u.page == cur[-1].page:
                # Carry whole trailing units (never half a sentence) up to ``overlap`` characters.
                for prev in reversed(cur):
                    if u.end - prev.start > size or cur[-1].end - prev.start > overlap:
                        break
                    carry.insert(0, prev)
            cur = carry
        cur.append(u)
    flush()
    return chunks
