"""Text from files and file names, made safe to print on one terminal line."""

from __future__ import annotations


def one_line(text: str) -> str:
    """Control characters (a newline in a file name, an escape sequence) shown as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
