"""Markdown (.md, .markdown): kept as Markdown, because the chunker splits on its ``#`` headings.

Only YAML front matter is removed: it is metadata, not content, and would otherwise be indexed as
the first paragraph. Its ``title:`` is the best title when present.
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


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    text = decode_text(data, path)
    fm_title = ""
    match = _FRONT_MATTER.match(text)
    if match:
        fm_title = _front_matter_title(match.group(1) or "")
        text = text[match.end() :]
    title = fm_title or _first_h1(text) or path.stem
    return LoadedText(text=text, title=title, format="markdown")


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
