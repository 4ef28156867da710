"""Uploaded files: safe names, staging, and an ingest that leaves nothing half-done.

A client chooses the file name it sends, so it is treated as hostile: only its last path component
survives ("../../etc/passwd" → "passwd", "C:\\x\\a.md" → "a.md"), control characters and NUL go, and
the result must still resolve inside ``<kb>/uploads/``. Files are first written to a staging folder;
the ingest job moves them into place one by one, and a file whose ingest fails is taken out again
(and the version it replaced put back), so the folder always matches the catalog.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from zhiku.errors import FileTooLargeError, UnsupportedFormatError, UsageError, ZhikuError
from zhiku.service import content_hash, supported_extensions

_FORBIDDEN = set('<>:"|?*')
MAX_NAME_BYTES = 200


def safe_filename(name: str) -> str:
    """A file name that is safe to create in one folder, or a UsageError saying why there is none."""
    original = name
    name = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in _FORBIDDEN)
    # Leading dots would make hidden files (".bashrc") or the names "." and "..".
    name = name.strip().lstrip(".").strip()
    if not name:
        raise UsageError(
            f"the file name {original!r} is empty once unsafe characters are removed",
            "Rename the file (letters, digits, Chinese characters, '-', '_', '.')",
        )
    if len(name.encode()) > MAX_NAME_BYTES:  # file systems allow 255 bytes; keep the extension
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext) > 10:
            stem, ext = name, ""
        keep = MAX_NAME_BYTES - (len(ext.encode()) + 1 if ext else 0)
        stem = stem.encode()[:keep].decode("utf-8", "ignore")
        name = f"{stem}.{ext}" if ext else stem
    return name


def check_type(name: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix not in supported_extensions():
        raise UnsupportedFormatError(
            f"{name}: unsupported file type {suffix or '(none)'}",
            f"Upload one of: {', '.join(sorted(supported_extensions()))}",
        )


@dataclass
class Staged:
    name: str  # the safe name it will have under uploads/
    path: Path  # where it waits in the staging folder
    digest: str


@dataclass
class Refused:
    name: str  # as the client sent it (made safe to show)
    error: str  # one line: what is wrong and how to fix it


def stage(
    uploads: Path, files: Sequence[tuple[str, BinaryIO]], max_bytes: int
) -> tuple[Path, list[Staged], list[Refused]]:
    """Copy the acceptable files into a fresh staging folder; refuse the others one by one.

    A file of an unsupported type, an empty one or a second file of the same name is refused with
    its reason while the rest go ahead, as ``zhiku ingest`` skips what it cannot read. When nothing
    is left, the first refusal is raised (so a request of only bad files is an HTTP error). A file
    over the size limit still fails the whole request: the body is read as it arrives and the
    limit protects the server, not the catalog.
    """
    named: list[tuple[str, BinaryIO]] = []
    refused: list[Refused] = []
    errors: list[ZhikuError] = []
    seen: set[str] = set()
    for raw, fileobj in files:
        try:
            name = safe_filename(raw or "")
            check_type(name)
            if name.lower() in seen:
                raise UsageError(
                    f"two uploaded files are both named {name!r}", "Upload them separately or rename one"
                )
        except ZhikuError as e:
            refused.append(Refused(_shown(raw), e.one_line()))
            errors.append(e)
            continue
        seen.add(name.lower())
        named.append((name, fileobj))
    if not named:
        raise errors[0] if errors else UsageError("no files in the upload", "Send one or more files")
    from zhiku.home import OWNER_FILE

    folder = _staging_folder(uploads)
    try:
        # Who staged it: after a crash, the next writer removes staging folders of dead owners only.
        (folder / OWNER_FILE).write_text(str(os.getpid()), encoding="ascii")
        staged = []
        for name, fileobj in named:
            target = _inside(folder, name)
            size = _copy(fileobj, target, max_bytes, name)
            if size == 0:
                target.unlink()
                empty = UsageError(f"{name} is empty", "Upload a file with some text in it")
                refused.append(Refused(name, empty.one_line()))
                errors.append(empty)
                continue
            staged.append(Staged(name, target, content_hash(target.read_bytes())))
        if not staged:
            raise errors[0] if errors else UsageError("no files in the upload", "Send one or more files")
        return folder, staged, refused
    except BaseException:
        unstage(folder)
        raise


def claim(folder: Path) -> None:
    """Make this process the owner of a staging folder (the server's writer process, when it
    takes an upload over): recovery leaves a folder alone while its owner lives."""
    from zhiku.home import OWNER_FILE

    (folder / OWNER_FILE).write_text(str(os.getpid()), encoding="ascii")


def owned_by_me(folder: Path) -> bool:
    from zhiku.home import OWNER_FILE

    try:
        return int((folder / OWNER_FILE).read_text().strip()) == os.getpid()
    except (OSError, ValueError):
        return False


def _staging_folder(uploads: Path) -> Path:
    """A fresh folder under ``uploads/.staging``. Another upload (or a recovery) removes the staging
    area when it is empty, so it can vanish between making it and making our folder in it: the soak
    found that as a 500 on about one upload in 1,400; make both again, a bounded number of times."""
    folder = uploads / ".staging" / uuid.uuid4().hex
    for _ in range(100):
        try:
            # exist_ok is no help in a race: pathlib raises FileExistsError when the folder it
            # found existing is gone by the time it checks that it is a folder
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
            return folder
        except (FileNotFoundError, FileExistsError):
            continue
    folder.mkdir(parents=True)  # the last try: any error now is a real one
    return folder


def _shown(raw: str) -> str:
    try:
        return safe_filename(raw or "")
    except UsageError:
        return repr(raw)


def unstage(folder: Path) -> None:
    """Remove a staging folder, and the staging area itself once no other upload uses it."""
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:
        pass  # another upload is staged there right now


def _inside(folder: Path, name: str) -> Path:
    target = (folder / name).resolve()
    if target.parent != folder.resolve():  # defence in depth: safe_filename already made sure
        raise UsageError(f"unsafe file name {name!r}", "Rename the file")
    return target


def _copy(src: BinaryIO, target: Path, max_bytes: int, name: str) -> int:
    size = 0
    with open(target, "xb") as out:
        while block := src.read(1 << 20):
            size += len(block)
            if size > max_bytes:
                raise FileTooLargeError(
                    f"{name} is over the upload limit of {max_bytes / 2**20:g} MB",
                    "Split the file, or start the server with a larger --max-upload-mb",
                )
            out.write(block)
    return size


@dataclass
class Placed:
    staged: Staged
    final: Path
    backup: Path | None


def place(uploads: Path, staged: Sequence[Staged]) -> list[Placed]:
    """Move staged files into ``uploads/``, keeping any file they replace until the ingest is done."""
    placed = []
    for s in staged:
        final = _inside(uploads, s.name)
        backup = None
        if final.exists() or final.is_symlink():
            backup = s.path.with_name(f".previous.{s.name}")
            os.replace(final, backup)
        os.replace(s.path, final)
        placed.append(Placed(s, final, backup))
    return placed


def settle(placed: Sequence[Placed], ingested: set[str]) -> list[str]:
    """Keep the files whose ingest succeeded; take the others out again. Returns the removed names."""
    removed = []
    for p in placed:
        if str(p.final) in ingested:
            if p.backup is not None:
                p.backup.unlink(missing_ok=True)
            continue
        p.final.unlink(missing_ok=True)
        if p.backup is not None:
            os.replace(p.backup, p.final)
        removed.append(p.staged.name)
    return removed


def ingested_now(kb: Any, placed: Sequence[Placed]) -> set[str]:
    """The placed files whose current bytes are what the catalog holds for their path."""
    return {str(p.final) for p in placed if kb.content_hash_of(str(p.final)) == p.staged.digest}
