"""Derived files in the user's cache folder, and the one format that makes start-up cheap.

A one-off ``zhiku search`` spent most of its second loading dictionaries whole: jieba's prefix
dictionary (~500,000 words, 0.3-0.5 s to unmarshal) and e5's 250,002 vocabulary pieces (0.3 s to
parse), when a 20-character question looks up a few hundred of their entries. ``ShardTable`` keeps
such a ``str -> value`` mapping in one file, cut into shards by the first two characters of the
key: a text loads only the shards of the character pairs it contains (well under a millisecond for
a question); a long text (an ingest) ends up loading them all, at the cost of the whole.

jieba and e5 look up substrings of the text only, and each substring's shard is that of its first
two characters (or its one), so a reader filled shard by shard answers exactly as the whole mapping
would.

The file is written once, atomically (a temporary file renamed into place), and checked as it is
read: its length against the length in its header (a truncated file), a CRC-32 of the header and
one of every shard (a damaged one). A file that fails raises ``DamagedCacheFile``; its owner deletes
it, uses the slow path once, and writes it again. Nothing a user stores is kept this way: these
files are derived from installed packages and rebuilt from them at any time.
"""

from __future__ import annotations

import marshal
import mmap
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MAGIC = b"ZKSHRD01"
#: shards per file: enough that a question's characters touch ~1/200 of a large table each
SHARDS = 4096
_HEAD = struct.Struct("<8sIIQ")  # magic, shards, extra bytes, file length


def cache_root() -> Path:
    """``ZHIKU_CACHE`` or the user's cache folder (resolved when called, never at import)."""
    env = os.environ.get("ZHIKU_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("zhiku", appauthor=False))


class DamagedCacheFile(ValueError):
    """A cache file that is truncated, damaged or not ours: delete it and build it again.

    Never shown to a user (the owner rebuilds the file), so not a ``ZhikuError``."""


def shard_of(key: str, shards: int) -> int:
    """A key's shard, by its first two characters: by the first alone, one shard would hold every
    e5 piece that starts a word (``▁…``, 100,000 of them) and every jieba word starting with 中."""
    if not key:
        return 0
    h = ord(key[0])
    if len(key) > 1:
        h = h * 65599 + ord(key[1])
    return h % shards


def shards_for(text: str, shards: int) -> set[int]:
    """The shards holding every key that is a substring of ``text`` (one or more characters)."""
    return {shard_of(text[i : i + 2], shards) for i in range(len(text))} | {shard_of(c, shards) for c in text}


def write_table(path: Path, items: Iterable[tuple[str, Any]], extra: Any = None) -> None:
    """Write ``items`` (marshal-able values) and ``extra`` to ``path`` atomically."""
    parts: list[dict[str, Any]] = [{} for _ in range(SHARDS)]
    for key, value in items:
        parts[shard_of(key, SHARDS)][key] = value
    blobs = [marshal.dumps(p) for p in parts]
    extra_blob = marshal.dumps(extra)
    start = _HEAD.size + 8 * (SHARDS + 1) + 4 * SHARDS + len(extra_blob) + 4
    offsets = [start]
    for b in blobs:
        offsets.append(offsets[-1] + len(b))
    head = (
        _HEAD.pack(MAGIC, SHARDS, len(extra_blob), offsets[-1])
        + struct.pack(f"<{SHARDS + 1}Q", *offsets)
        + struct.pack(f"<{SHARDS}I", *(zlib.crc32(b) for b in blobs))
        + extra_blob
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            f.write(struct.pack("<I", zlib.crc32(head)))
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ShardTable:
    """A table written by ``write_table``, read shard by shard (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:  # ValueError: an empty file cannot be mapped
            raise DamagedCacheFile(f"{path}: {e}") from e
        m = self._map
        try:
            magic, shards, extra_len, length = _HEAD.unpack_from(m, 0)
            if magic != MAGIC or not 0 < shards <= 1 << 20:
                raise DamagedCacheFile(f"{path}: not a shard table")
            if length != len(m):
                raise DamagedCacheFile(f"{path}: {len(m)} bytes, its header says {length} (truncated?)")
            o = _HEAD.size
            self._offsets = struct.unpack_from(f"<{shards + 1}Q", m, o)
            o += 8 * (shards + 1)
            self._crcs = struct.unpack_from(f"<{shards}I", m, o)
            o += 4 * shards + extra_len
            (crc,) = struct.unpack_from("<I", m, o)
            if zlib.crc32(m[:o]) != crc:
                raise DamagedCacheFile(f"{path}: its header is damaged")
            self.extra = marshal.loads(m[o - extra_len : o])
        except (struct.error, ValueError, EOFError, TypeError) as e:
            if isinstance(e, DamagedCacheFile):
                raise
            raise DamagedCacheFile(f"{path}: {e}") from e
        self.shards = shards
        self._loaded: set[int] = set()
        self._lock = threading.Lock()

    def shard(self, i: int) -> dict[str, Any]:
        a, b = self._offsets[i], self._offsets[i + 1]
        blob = self._map[a:b]
        if not a <= b <= len(self._map) or zlib.crc32(blob) != self._crcs[i]:
            raise DamagedCacheFile(f"{self.path}: shard {i} is damaged")
        try:
            part = marshal.loads(blob)
        except (ValueError, EOFError, TypeError) as e:
            raise DamagedCacheFile(f"{self.path}: shard {i}: {e}") from e
        if not isinstance(part, dict):
            raise DamagedCacheFile(f"{self.path}: shard {i} is not a table")
        return part

    def fill(self, into: dict[str, Any], text: str) -> None:
        """Add to ``into`` the entries of every shard ``text``'s characters need, once each."""
        wanted = shards_for(text, self.shards) - self._loaded
        if wanted:
            self._fill(into, sorted(wanted))

    def fill_all(self, into: dict[str, Any]) -> None:
        self._fill(into, [i for i in range(self.shards) if i not in self._loaded])

    def _fill(self, into: dict[str, Any], shards: list[int]) -> None:
        with self._lock:
            for i in shards:
                if i not in self._loaded:
                    into.update(self.shard(i))
                    self._loaded.add(i)

    def items(self) -> Iterator[tuple[str, Any]]:
        for i in range(self.shards):
            yield from self.shard(i).items()
