"""Markdown (.md, .markdown): kept as Markdown, because the chunker splits on its ``#`` headings.

YAML front matter and HTML comments (``<!-- INFO END -->`` in the laws corpus) are removed: they
are markup, not content, and would otherwise be indexed and quoted in passages. Front matter's
``title:`` is the best title when present. Comments inside fenced code blocks are code: kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from zhiku.ingest.loaders import LOADERS, LoadedText, LoadOptions
from zhiku.ingest.loaders.text import decode_text

# Front matter is a block fenced by "---" lines at the very start; "..." may also close it.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FM_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_ATX_H1 = re.compile(r"^[ ]{0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^[ ]{0,3}(```|~~~)")
_COMMENT = re.compile(r"<!--.*?-->[ \t]*", re.DOTALL)


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    text = decode_text(data, path)
    fm_title = ""
    match = _FRONT_MATTER.match(text)
    if match:
        fm_title = _front_matter_title(match.group(1) or "")
        text = text[match.end() :]
    text = strip_comments(text)
    title = fm_title or _first_h1(text) or path.stem
    return LoadedText(text=text, title=title, format="markdown")


def strip_comments(text: str) -> str:
    """``text`` without HTML comments, except inside fenced code blocks."""
    if "<!--" not in text:
        return text
    out: list[str] = []
    prose: list[str] = []
    in_fence = False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            if not in_fence:
                out.append(_COMMENT.sub("", "".join(prose)))
                prose = []
            in_fence = not in_fence
            out.append(line)
        elif in_fence:
            out.append(line)
        else:
            prose.append(line)
    out.append(_COMMENT.sub("", "".join(prose)))
    return "".join(out)


def _front_matter_title(block: str) -> str:
    # A regex instead of a YAML parser: only the title is needed, and a malformed front matter
    # block should not make the whole document unreadable.
    match = _FM_TITLE.search(block)
    if not match:
        return ""
    value = match.group(1)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value.strip()


def _first_h1(text: str) -> str:
    in_fence = False
    for line in text.splitlines():
        # A "# comment" inside a fenced code block is not a heading.
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            match = _ATX_H1.match(line)
            if match:
                return match.group(1).strip()
    return ""


LOADERS.add(".md", load)
LOADERS.add(".markdown", load)
