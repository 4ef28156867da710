"""The one progress contract: a phase with a label and a total, advanced in steps.

Building (one phase per method), evaluating (one per method and step) and server jobs all report
through it; the CLI draws tqdm bars (``cli/common.PhaseBar``), the API turns phases into job state,
and the library itself prints nothing.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    """Reports nowhere (the default)."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass
