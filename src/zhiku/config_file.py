"""``zhiku.toml`` is the user's file: read with line numbers in errors, completed in place.

A file written before the first ingest is kept: zhiku adds the keys it lacks (with their
defaults) and changes the values it must, and leaves the user's comments, order and formatting
as they were (tomlkit). A method table that names no ``kind`` tunes a default method
(``[methods.dense] enabled = false``): it is completed from that default, not refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")


def _split_key(text: str) -> list[str]:
    return [p.strip().strip("\"'") for p in text.split(".")]


def line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line (1-based) of the deepest key of ``loc`` that the file spells out, or None."""
    want = [str(p) for p in loc]
    table: list[str] = []
    best: tuple[int, int] | None = None  # (depth matched, line)
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            path = table
        else:
            key = _KEY.match(line)
            if not key:
                continue
            path = table + _split_key(key.group(1))
        if want[: len(path)] == path and (best is None or len(path) > best[0]):
            best = (len(path), n)
    return best[1] if best else None


def complete_methods(data: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with partial method tables (no ``kind``) completed from the default methods.

    If every method the file names is such a tuning of a default, the other defaults are kept too:
    ``[methods.dense] enabled = false`` alone must not leave a KB without BM25.
    """
    methods = data.get("methods")
    if not isinstance(methods, dict):
        return data
    partial = [n for n, m in methods.items() if isinstance(m, dict) and "kind" not in m and n in defaults]
    if not partial:
        return data
    out: dict[str, Any] = {}
    if len(partial) == len(methods):
        out.update({n: defaults[n] for n in defaults})
    for name, table in methods.items():
        if name in partial:
            base = dict(defaults[name])
            options = {**base.get("options", {}), **table.get("options", {})}
            out[name] = {**base, **table, "options": options}
        else:
            out[name] = table
    return {**data, "methods": out}


def write_kept(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path``: into the existing document if there is one (its comments and
    order kept, keys it lacks added, keys ``data`` no longer has removed), atomically."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from zhiku.store.files import atomic_write_text

    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, TOMLKitError):
        doc = tomlkit.document()
    _merge(doc, data)
    atomic_write_text(path, tomlkit.dumps(doc))


def _merge(table: Any, data: dict[str, Any]) -> None:
    for key, value in data.items():
        current = table.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        elif current is None or _plain(current) != value:
            table[key] = value
    for key in [k for k in table if k not in data]:
        del table[key]


def _plain(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item
