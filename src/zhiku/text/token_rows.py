"""Every chunk's tokens for a build, held compactly: what makes a 1M-chunk build fit in memory.

A build used to hold ``list[list[str]]``: about 150 ``str`` objects per chunk (≈ 85 bytes each with
the list slot), ≈ 12 KB a chunk, most of the 6.1 GB peak measured at 287k chunks. The catalog
already stores each chunk's tokens as one space-joined string; ``JoinedTokens`` keeps that string
and splits it when a row is read, so only the rows in use exist as lists. ``TokenIdRows`` is the
same corpus as vocabulary ids in one int32 array with offsets (4 bytes a token), for bm25s, which
reads each document's ids as a list one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    import numpy as np


class JoinedTokens(Sequence[list[str]]):
    """``rows[i]`` is chunk i's token list, split from its space-joined string on each read."""

    def __init__(self, joined: list[str]) -> None:
        self._joined = joined

    def __len__(self) -> int:
        return len(self._joined)

    @overload
    def __getitem__(self, i: int) -> list[str]: ...
    @overload
    def __getitem__(self, i: slice) -> list[list[str]]: ...
    def __getitem__(self, i: int | slice) -> list[str] | list[list[str]]:
        if isinstance(i, slice):
            return [s.split() for s in self._joined[i]]
        return self._joined[i].split()

    def __iter__(self) -> Iterator[list[str]]:
        for s in self._joined:
            yield s.split()


class TokenIdRows(Sequence[list[int]]):
    """Token ids of every row in one flat int32 array; ``rows[i]`` is a fresh ``list[int]``."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self.flat, self.offsets = flat, offsets

    @classmethod
    def build(
        cls, rows: Iterable[list[str]], vocab: dict[str, int], empty: str, chunk: int = 1 << 20
    ) -> TokenIdRows:
        """Map tokens to ids (growing ``vocab``) row by row; an empty row gets the ``empty`` token."""
        import numpy as np  # lazily: ``import zhiku`` stays light

        parts: list[np.ndarray] = []
        buf: list[int] = []
        lengths: list[int] = []
        for toks in rows:
            ids = [vocab.setdefault(t, len(vocab)) for t in toks] or [vocab.setdefault(empty, len(vocab))]
            buf.extend(ids)
            lengths.append(len(ids))
            if len(buf) >= chunk:  # a Python int list only this long at a time
                parts.append(np.asarray(buf, dtype=np.int32))
                buf = []
        parts.append(np.asarray(buf, dtype=np.int32))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(np.asarray(lengths, dtype=np.int64), out=offsets[1:])
        return cls(np.concatenate(parts), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, i: int) -> list[int]: ...
    @overload
    def __getitem__(self, i: slice) -> list[list[int]]: ...
    def __getitem__(self, i: int | slice) -> list[int] | list[list[int]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return self.flat[self.offsets[i] : self.offsets[i + 1]].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for i in range(len(self)):
            yield self.flat[self.offsets[i] : self.offsets[i + 1]].tolist()
