"""zhiku (知库): local-first knowledge-base question answering for Chinese and English documents.

``import zhiku`` stays light: the facade and its dependencies load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zhiku.version import __version__

__all__ = ["KnowledgeBase", "__version__"]

if TYPE_CHECKING:
    from zhiku.service import KnowledgeBase


def __getattr__(name: str) -> Any:
    if name == "KnowledgeBase":
        from zhiku.service import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(f"module 'zhiku' has no attribute {name!r}")
