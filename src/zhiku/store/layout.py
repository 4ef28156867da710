"""Where a knowledge base keeps its files, and the writer lock.

```
<home>/<kb>/zhiku.toml  catalog.sqlite  indexes/<method>/  models/<name>/  .lock
```
"""

from __future__ import annotations

import fcntl
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from zhiku.errors import AlreadyExistsError, LockedError, UsageError

_NAME = re.compile(r"[\w\u4e00-\u9fff][\w\u4e00-\u9fff.-]{0,63}")

#: lock file descriptors this process holds; a forked worker closes its copies (``close_held_locks``)
_HELD: set[int] = set()


def close_held_locks() -> None:
    """In a freshly forked child: close the inherited KB lock descriptors.

    ``flock`` belongs to the open file, which a fork shares: a worker that kept its copy would keep
    the KB locked after its parent died. Closing the child's copy leaves the parent's lock held.
    """
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


def check_kb_name(name: str) -> str:
    """The name of a KB to look up, NFC-normalised (what a Mac's keyboard or file picker sends as
    decomposed characters names the same KB); a name that could escape the home is refused."""
    name = unicodedata.normalize("NFC", name)
    # fullmatch, not match with ^...$: "$" also matches before a final newline ("kb\n").
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise UsageError(
            f"invalid knowledge base name {name!r}",
            "Use letters, digits, Chinese characters, '-', '_' or '.', at most 64 characters",
        )
    return name


def kb_names(home: Path) -> list[str]:
    """The KBs under ``home``: the folders holding a catalog."""
    if not home.is_dir():
        return []
    return sorted(p.name for p in home.iterdir() if (p / "catalog.sqlite").exists())


#: names Windows reserves for devices, with any extension ("nul.txt" is the device too), any case
_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{d}{i}" for d in ("COM", "LPT") for i in [*"123456789", "¹", "²", "³"]]
)


def check_new_kb_name(name: str, existing: Iterable[str] = ()) -> str:
    """The name of a KB about to be created: ``check_kb_name`` and, so the KB's folder can be copied
    to any computer (a backup, a shared drive, Windows or macOS), no Windows device name, no final
    '.', and no name that differs from an existing KB's only in case (the same folder on Windows and
    macOS). Existing KBs keep working whatever their name: only new ones are held to this.

    Non-ASCII names are welcome (知识库, 法律法规, 4æ): every file system zhiku runs on stores them,
    and refusing look-alike letters would refuse real names for no gain, since a KB name is never
    an identity or a security boundary."""
    name = check_kb_name(name)
    hint = "Pick another name: letters, digits, Chinese characters, '-', '_' or '.' (not at the end)"
    if name.split(".", 1)[0].upper() in _DEVICES:
        raise UsageError(f"knowledge base name {name!r} is reserved for a device on Windows", hint)
    if name.endswith("."):
        raise UsageError(f"knowledge base name {name!r} ends with '.', which Windows drops", hint)
    folded = name.casefold()
    for other in existing:
        if other != name and other.casefold() == folded:
            raise AlreadyExistsError(
                f"knowledge base {name!r} differs from the existing {other!r} only in case "
                "(the same folder on Windows and macOS)",
                f"Use {other!r}, or pick another name",
            )
    return name


@dataclass(frozen=True)
class KBLayout:
    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "zhiku.toml"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def indexes(self) -> Path:
        return self.root / "indexes"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def index_dir(self, method: str) -> Path:
        return self.indexes / method

    def exists(self) -> bool:
        return self.catalog.exists()

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer per KB at a time (readers never wait): a second ingest fails fast and says why."""
        self.root.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC: a program started from here (exec) never inherits the lock; forked workers
        # close it themselves (close_held_locks).
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        _HELD.add(fd)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(
                    f"knowledge base {self.name!r} is being changed by another process",
                    "Wait for that ingest/delete/build to finish and try again",
                ) from None
            yield
        finally:
            _HELD.discard(fd)
            os.close(fd)
