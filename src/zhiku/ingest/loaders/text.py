"""Plain text (.txt), and the byte decoder every text-like loader shares.

Chinese text files arrive in many encodings (UTF-8 with or without BOM, UTF-16 from Windows
Notepad, GBK/GB18030 from older tools), so decoding is a sequence of increasingly loose guesses,
each checked for plausibility. A wrong guess must end in an error, never in silent mojibake that
would be indexed and retrieved as if it were text.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from zhiku.errors import CorruptFileError, DecodeError
from zhiku.ingest.loaders import LOADERS, LoadedText, LoadOptions

# Checked longest first: the UTF-32 LE BOM begins with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Files that are often renamed or mislabelled; naming the real type makes the error actionable.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.doc/.xls)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
)

# C0 controls other than tab, newline, vertical tab, form feed and carriage return, plus DEL and
# the replacement character: real text has almost none of these, binary data decoded as text
# has many.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffd]")
_MAX_CONTROL_RATIO = 0.01
_SAMPLE = 65536


def sniff_binary(data: bytes, path: Path) -> None:
    """Raise CorruptFileError when ``data`` is clearly not text (a known binary format or NULs)."""
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise CorruptFileError(
                f"{path} is {what}, not text",
                "rename it with its real extension, or convert it to a supported format",
            )
    # NUL bytes never occur in 8-bit text; UTF-16 without a BOM is the one legitimate exception.
    if b"\x00" in data and _utf16_without_bom(data) is None:
        raise CorruptFileError(
            f"{path} looks like a binary file, not text",
            "check that it is really a text document, or convert it to a supported format",
        )


def decode_text(data: bytes, path: Path) -> str:
    """Decode file bytes to str, with line endings normalised to ``\\n``.

    Order: BOM, strict UTF-8, BOM-less UTF-16 (NUL pattern), strict GB18030 that reads like
    Chinese, then charset-normalizer. Raises CorruptFileError for binary data and DecodeError
    when no guess is plausible.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _finish(data.decode(encoding), path)
            except UnicodeDecodeError as e:
                raise DecodeError(
                    f"{path} starts with a {encoding} byte-order mark but is not valid {encoding}",
                    "save it as UTF-8",
                ) from e

    sniff_binary(data, path)
    for guess in (_utf8, _utf16_without_bom, _gb18030, _charset_normalizer):
        text = guess(data)
        if text is not None and _plausible(text):
            return _finish(text, path)
    raise DecodeError(f"could not detect the text encoding of {path}", "save it as UTF-8")


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    return LoadedText(text=decode_text(data, path), title=path.stem, format="text")


def _finish(text: str, path: Path) -> str:
    if not _plausible(text):
        raise DecodeError(f"{path} decodes to binary-looking characters, not text", "save it as UTF-8")
    # One line-ending convention, so chunkers and front-matter parsing see the same text everywhere.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _plausible(text: str) -> bool:
    sample = text[:_SAMPLE]
    if not sample:
        return True
    return len(_CONTROL.findall(sample)) <= _MAX_CONTROL_RATIO * len(sample)


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _utf16_without_bom(data: bytes) -> str | None:
    # ASCII-range characters in UTF-16 have one zero byte: at odd offsets for little endian, at
    # even offsets for big endian. Require many zeros on one side and almost none on the other.
    if len(data) < 2 or len(data) % 2:
        return None
    sample = data[: _SAMPLE * 2]
    half = len(sample) // 2
    even_zeros = sample[0::2].count(0)
    odd_zeros = sample[1::2].count(0)
    if odd_zeros >= 0.3 * half and even_zeros <= 0.05 * half:
        encoding = "utf-16-le"
    elif even_zeros >= 0.3 * half and odd_zeros <= 0.05 * half:
        encoding = "utf-16-be"
    else:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _gb18030(data: bytes) -> str | None:
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    # GB18030 accepts many byte sequences, e.g. Latin-1 "é" followed by a letter decodes to a rare
    # ideograph. Real Chinese text is overwhelmingly made of the common characters of GB2312, so
    # demand that, or leave the file to charset-normalizer.
    wide = [ch for ch in text[:_SAMPLE] if ord(ch) > 0x7F]
    if not wide:
        return text
    common = sum(1 for ch in wide if _in_gb2312(ch))
    return text if common >= 0.9 * len(wide) else None


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _charset_normalizer(data: bytes) -> str | None:
    # Imported here: it is the last resort, and most files never need it.
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return None if best is None else str(best)


LOADERS.add(".txt", load)
