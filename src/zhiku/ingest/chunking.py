"""Structure-aware chunking.

Natural boundaries, strongest first: Markdown headings (a chunk never spans two sections),
paragraphs, article markers of Chinese regulations and contracts (第X条 / 第X章 / 第X节 start a new
block even without a blank line), then sentence ends (。！？；!?. ). Blocks are packed into chunks of
at most ``size`` characters; a block too long on its own is split at sentence ends, and a sentence
too long on its own at ``size``.

Every chunk is a contiguous span ``text[start:end]`` of the stored document text, so a citation
can point at the exact place; its heading path travels alongside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zhiku.config import ChunkingConfig

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_ARTICLE = re.compile(r"^[ \t\u3000]*第[零〇一二三四五六七八九十百千万0-9]+[条章节编]")
# A sentence ends after Chinese/English terminators (plus closing quotes/brackets), or at a newline.
_SENT_END = re.compile(r"[。！？；!?;]+[”’\"')）】」』]*|\.(?=\s)|\n")


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    heading: str


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

    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        m = _HEADING.match(line.rstrip("\n"))
        if m:
            close(pos)
            level = len(m.group(1))
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, m.group(2).strip())]
        elif not stripped:
            close(pos)
        else:
            if _ARTICLE.match(line):
                close(pos)
            if start is None:
                start = pos + (len(line) - len(line.lstrip()))
        pos += len(line)
    close(pos)
    return blocks


def _sentences(text: str, span: Span, size: int) -> list[Span]:
    out: list[Span] = []
    s = span.start
    for m in _SENT_END.finditer(text, span.start, span.end):
        e = m.end()
        if text[s:e].strip():
            out.append(Span(s, e, span.heading))
        s = e
    if s < span.end and text[s : span.end].strip():
        out.append(Span(s, span.end, span.heading))
    # A "sentence" longer than the chunk size (a table row, a run-on line) is cut at the size.
    cut: list[Span] = []
    for sp in out:
        for a in range(sp.start, sp.end, size):
            cut.append(Span(a, min(a + size, sp.end), sp.heading))
    return [_trim(text, sp) for sp in cut if text[sp.start : sp.end].strip()]


def _trim(text: str, sp: Span) -> Span:
    s, e = sp.start, sp.end
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return Span(s, e, sp.heading)


def chunk_text(text: str, config: ChunkingConfig) -> list[Span]:
    """Split ``text`` into chunk spans, in document order."""
    size, overlap = config.size, config.overlap
    units: list[Span] = []
    for block in _blocks(text):
        if block.end - block.start <= size:
            units.append(block)
        else:
            units.extend(_sentences(text, block, size))

    chunks: list[Span] = []
    cur: list[Span] = []

    def flush() -> None:
        if cur:
            chunks.append(Span(cur[0].start, cur[-1].end, cur[0].heading))

    for u in units:
        if cur and (
            u.heading != cur[0].heading
            and (cur[-1].end - cur[0].start) >= config.min_size
            or u.end - cur[0].start > size
        ):
            flush()
            carry: list[Span] = []
            if overlap and u.heading == cur[-1].heading:
                # Carry whole trailing units (never half a sentence) up to ``overlap`` characters.
                for prev in reversed(cur):
                    if u.end - prev.start > size or cur[-1].end - prev.start > overlap:
                        break
                    carry.insert(0, prev)
            cur = carry
        cur.append(u)
    flush()
    return chunks
