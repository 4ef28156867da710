"""Fit context blocks into the model's window: most relevant first, never cut mid-sentence.

The budget is the model's window minus the answer reserve minus the prompt around the context.
Tokens are counted with the model's own tokenizer when there is one (``local``); for servers they
are approximated: a CJK character (or other non-ASCII character) is about one token, four ASCII
characters are about one. The approximation errs on the generous side for Chinese, so a packed
prompt does not overflow a real window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from zhiku.generate.base import ContextBlock

TokenCounter = Callable[[str], int]

# A sentence runs to a Chinese/Western end mark (with closing quotes), a line break, or the end.
_SENTENCE = re.compile(r".+?(?:[。！？!?；;…]+[”’\"'」』）)\]]*|\.(?=\s)|\n|$)\s*", re.S)


def approx_tokens(text: str) -> int:
    ascii_chars = sum(1 for ch in text if ch < "\x80")
    return (len(text) - ascii_chars) + (ascii_chars + 3) // 4


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing spaces: ``"".join(split_sentences(t)) == t``."""
    return [m.group(0) for m in _SENTENCE.finditer(text)]


def pack_blocks(
    blocks: Sequence[ContextBlock],
    budget: int,
    render: Callable[[ContextBlock], str],
    count: TokenCounter = approx_tokens,
    separator_tokens: int = 1,
) -> list[ContextBlock]:
    """The blocks (in the given order, most relevant first) whose rendering fits in ``budget`` tokens.

    The first block that does not fit whole keeps as many of its leading sentences as fit, then
    packing stops: a less relevant block never displaces a more relevant one. A shortened block's
    ``end`` offset is moved to where its text now ends, so a citation points at what the model read.
    """
    out: list[ContextBlock] = []
    used = 0
    for block in blocks:
        cost = count(render(block)) + separator_tokens
        if used + cost <= budget:
            out.append(block)
            used += cost
            continue
        room = budget - used - separator_tokens - count(render(replace(block, text="")))
        kept = _leading_sentences(block.text, room, count)
        if kept:
            end = block.start + len(kept) if block.end - block.start == len(block.text) else block.end
            out.append(replace(block, text=kept, end=end))
        break
    return out


def _leading_sentences(text: str, room: int, count: TokenCounter) -> str:
    kept = ""
    for sentence in split_sentences(text):
        if count(kept + sentence) > room:
            break
        kept += sentence
    return kept.rstrip()
