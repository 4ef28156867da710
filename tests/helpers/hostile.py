"""A hostile-input corpus, generated: every kind of file a user (or an attacker) may hand to
``zhiku ingest`` or upload. Each kind makes one path (a file, or a folder holding the trap) in a
fresh folder. ``heavy`` kinds take seconds and hundreds of MB; the default tests skip them."""

from __future__ import annotations

import io
import os
import random
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.corpus import make_pdf

#: a word only the document stored before the hostile file contains (its "nothing lost" check)
MARKER = "zqxtealeaf"
TEA = f"# 茶\n\n水壶烧开水泡茶。The kettle boils water for tea. {MARKER}\n"


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[Path], Path]
    heavy: bool = False
    peak_mb: int = 600  # bound on the peak RSS of a `zhiku ingest` of it (the baseline is ~200 MB)


def _file(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / name
        p.write_bytes(data)
        return p

    return make


def _rand(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _encrypted_pdf(folder: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Secret plans."]))))
    w.encrypt(user_password="pw", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    w.write(out)
    p = folder / "encrypted.pdf"
    p.write_bytes(out.getvalue())
    return p


def _docx_bomb(folder: Path) -> Path:
    from tests.helpers.zipbomb import docx_bomb

    return docx_bomb(folder / "bomb.docx", unpacked_mb=100)


def _docx_text_bomb(folder: Path) -> Path:
    from tests.helpers.zipbomb import docx_bomb

    return docx_bomb(folder / "textbomb.docx", unpacked_mb=100, in_text=True)


def _docx_big_bomb(folder: Path) -> Path:
    from tests.helpers.zipbomb import docx_bomb

    return docx_bomb(folder / "gigabomb.docx", unpacked_mb=1024)


def _zip_without_document(folder: Path) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "not a word document")
    p = folder / "nodocument.docx"
    p.write_bytes(out.getvalue())
    return p


def _truncated_docx(folder: Path) -> Path:
    from tests.helpers.corpus import make_docx

    p = make_docx(folder / "cut.docx")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def _in_folder(make: Callable[[Path], None]) -> Callable[[Path], Path]:
    def wrapped(folder: Path) -> Path:
        d = folder / "dir"
        d.mkdir()
        (d / "fine.md").write_text("# Fine\n\nAn ordinary page beside the trap.\n", encoding="utf-8")
        make(d)
        return d

    return wrapped


def _deep_html(depth: int) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"deep text" + b"</div>" * depth + b"</body></html>"


def _single_line(mb: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / f"line{mb}mb.txt"
        words = b"kettle water tea garden soil light "
        with p.open("wb") as f:
            for _ in range(mb * 1024 * 1024 // len(words) + 1):
                f.write(words)
        return p

    return make


def _chmod000(d: Path) -> None:
    p = d / "secret.md"
    p.write_text("# Secret\n\nno access\n", encoding="utf-8")
    p.chmod(0)


KINDS: list[Kind] = [
    Kind("empty file", _file("empty.txt", b"")),
    Kind("whitespace only", _file("blank.md", b" \n\t\n   \n" * 100)),
    Kind("BOM only", _file("bom.txt", b"\xef\xbb\xbf")),
    Kind("random binary as .txt", _file("noise.txt", _rand(200_000))),
    Kind("ELF binary as .md", _file("program.md", b"\x7fELF\x02\x01\x01" + _rand(50_000, 1))),
    Kind("NUL bytes in text", _file("nul.txt", b"tea\x00kettle\x00" * 5000)),
    Kind("ANSI escapes in text", _file("ansi.txt", b"\x1b[31mred\x1b[0m \x1b]0;title\x07 text " * 200)),
    Kind("mixed UTF-8 and GBK", _file("mixed.txt", "水壶烧水".encode() + "泡茶用的水".encode("gbk") * 50)),
    Kind("UTF-16 without BOM", _file("u16.txt", "会议纪要：下周三开会。".encode("utf-16-le") * 50)),
    Kind("Latin-1 text", _file("latin1.txt", "Café crème brûlée, naïve façade. ".encode("latin-1") * 50)),
    Kind("encrypted PDF", _encrypted_pdf),
    Kind("truncated PDF", _file("cut.pdf", make_pdf(["Printer manual.", "Toner."])[:300])),
    Kind("PDF header then garbage", _file("garbage.pdf", b"%PDF-1.7\n" + _rand(100_000, 2))),
    Kind("text named .pdf", _file("text.pdf", b"just some text, not a pdf")),
    Kind("PDF without text layer", _file("scan.pdf", make_pdf([]))),
    Kind("docx zip bomb (media, 100 MB)", _docx_bomb),
    Kind("docx zip bomb (text, 100 MB)", _docx_text_bomb),
    Kind("docx zip bomb (1 GB)", _docx_big_bomb, heavy=True),
    Kind("docx without document.xml", _zip_without_document),
    Kind("old .doc renamed .docx", _file("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _rand(5000, 3))),
    Kind("text named .docx", _file("text.docx", b"plain text pretending")),
    Kind("truncated docx", _truncated_docx),
    Kind("deep HTML nesting (100k)", _file("deep.html", _deep_html(100_000))),
    Kind(
        "HTML with only script",
        _file("script.html", b"<html><script>" + b"var a=1;" * 10000 + b"</script></html>"),
    ),
    Kind(
        "HTML with a lying charset",
        _file("charset.html", b'<meta charset="utf-32"><p>' + "茶".encode() * 100 + b"</p>"),
    ),
    Kind("markdown of headings only", _file("headings.md", b"#\n" * 200_000)),
    Kind("CJK without punctuation (2 MB)", _file("cjk.txt", ("茶水壶" * 233_000).encode()), heavy=True),
    Kind("single line of 20 MB", _single_line(20), heavy=True, peak_mb=1500),
    Kind("single line of 51 MB (over the limit)", _single_line(51)),
    Kind(
        "file name with a newline", _file("two\nlines.md", b"# Two\n\nA page with a newline in its name.\n")
    ),
    Kind("weird unicode name", _file("\u202egnp.md\u200d🍵é\u0301.md", b"# Tea\n\nA weird name.\n")),
    Kind("very long name", _file("长" * 80 + ".md", b"# Long\n\nA very long file name.\n")),
    Kind("FIFO in a folder", _in_folder(lambda d: os.mkfifo(d / "pipe.txt"))),
    Kind("symlink loop in a folder", _in_folder(lambda d: os.symlink("loop.md", d / "loop.md"))),
    Kind("dangling symlink in a folder", _in_folder(lambda d: os.symlink("missing.md", d / "gone.md"))),
    Kind("symlink to /dev/zero", _in_folder(lambda d: os.symlink("/dev/zero", d / "zero.txt"))),
    Kind("folder named like a file", _in_folder(lambda d: (d / "folder.md").mkdir())),
    Kind("unreadable file (chmod 000)", _in_folder(_chmod000)),
]


@dataclass
class Outcome:
    kind: str
    rc: int
    line: str  # what the user reads about the file
    peak_mb: float
    traceback: bool
    lost: bool  # the KB's earlier document is gone or no longer found


def user_line(stdout: str, stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    if errors:
        return errors[0]
    out = stdout.splitlines()
    failed = [line.strip() for line in out if line.strip().startswith("failed:")]
    skipped = [line.strip() for line in out if line.strip().startswith("skipped ") and "files" in line]
    return "; ".join(failed + skipped) or (out[0] if out else "")


def measure(kind: Kind, work: Path, home: Path) -> Outcome:
    """``zhiku ingest`` of the kind into KB "k" of ``home`` (which holds tea.md), in a child process."""
    import subprocess

    from tests.helpers.crashkit import zhiku_cmd, zhiku_env

    folder = work / f"kind{KINDS.index(kind):02d}"
    folder.mkdir(parents=True)
    target = kind.make(folder)
    out_path, err_path = folder.with_suffix(".out"), folder.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            zhiku_cmd("ingest", str(target), "--kb", "k", "--keep-missing"),
            env=zhiku_env(home),
            stdout=out,
            stderr=err,
        )
        peak = watch_peak(proc)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    return Outcome(
        kind.name,
        proc.returncode,
        user_line(stdout, stderr),
        round(peak, 1),
        "Traceback" in stdout + stderr,
        _lost(home),
    )


def watch_peak(proc: Any) -> float:
    """Peak RSS in MB of ``proc`` and its workers together, until it exits.

    Read from /proc (VmHWM, each process's own high-water mark) every 20 ms: the rusage of a
    forked child includes the RSS its parent had at the fork (here the benchmark, which built
    the hostile file in memory), so it would not measure zhiku.
    """
    from tests.helpers.crashkit import descendants

    hwm: dict[int, int] = {}
    while proc.poll() is None:
        for pid in {proc.pid} | descendants(proc.pid):
            try:
                with open(f"/proc/{pid}/status", "rb") as f:
                    for line in f:
                        if line.startswith(b"VmHWM:"):
                            hwm[pid] = max(hwm.get(pid, 0), int(line.split()[1]))
            except (OSError, ValueError):
                pass
        time.sleep(0.02)
    return sum(hwm.values()) / 1024


def _lost(home: Path) -> bool:
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open("k", home=home, create=False) as kb:
        return not any(h.doc.title == "茶" for h in kb.search(MARKER, k=10, method="bm25"))
