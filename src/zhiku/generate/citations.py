"""Citations that are always true: a ``[n]`` that points at no source never reaches a reader.

``drop_invalid`` cleans a whole text; ``CitationFilter`` does the same to a stream, holding back a
piece that ends inside a possible marker (``"… [1"`` then ``"2]"``) until it knows. Both are used
below the faces (``generate/answer.py`` wraps ``on_token``), so the CLI's streamed text, the API's
SSE events, the OpenAI-compatible stream and the page all show the same cleaned text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

CITE = re.compile(r"\[(\d{1,3})\]")
#: the tail of a piece that may still become a marker: "[", "[1", "[12", "[123"
_OPEN = re.compile(r"\[\d{0,3}$")


def drop_invalid(text: str, valid: Collection[int]) -> str:
    """``text`` without the ``[n]`` whose n is not in ``valid``."""
    return CITE.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", text)


class CitationFilter:
    """Streaming ``drop_invalid``: ``feed`` each piece, then ``flush`` at the end.

    The concatenation of everything returned equals ``drop_invalid`` of the whole text.
    """

    def __init__(self, valid: Collection[int]) -> None:
        self.valid = frozenset(valid)
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        m = _OPEN.search(text)
        cut = m.start() if m else len(text)
        self._held = text[cut:]
        return drop_invalid(text[:cut], self.valid)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return drop_invalid(text, self.valid)


def filtered(
    on_token: Callable[[str], None], valid: Collection[int]
) -> tuple[Callable[[str], None], Callable[[], None]]:
    """``(on_piece, finish)``: pass pieces through a ``CitationFilter`` to ``on_token`` (empty
    results are not sent); ``finish`` sends what was held back."""
    f = CitationFilter(valid)

    def on_piece(piece: str) -> None:
        out = f.feed(piece)
        if out:
            on_token(out)

    def finish() -> None:
        out = f.flush()
        if out:
            on_token(out)

    return on_piece, finish
