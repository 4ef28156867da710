"""OCR for scanned pages and images: RapidOCR (PP-OCRv4 Chinese/English, ONNX Runtime), offline.

``rapidocr-onnxruntime`` 1.4.4 ships its detection, direction and recognition models inside the
wheel and its config points at those files, so nothing is downloaded at run time (newer ``rapidocr``
releases fetch models on first use; that is why the version is pinned). The engine loads once per
process, on the first page that needs it. PDF pages are rendered with pypdfium2, which needs no
system binary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from zhiku.errors import DependencyMissingError

if TYPE_CHECKING:
    from PIL.Image import Image

# 200 dpi: small print (9 pt) in Chinese still has enough strokes per character; 300 dpi was no
# more accurate on our test pages and is over twice as slow.
RENDER_DPI = 200
_INSTALL = "pip install 'zhiku[ocr]' (rapidocr-onnxruntime and pypdfium2), or set ingest.ocr = false"


@lru_cache(maxsize=1)
def _engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as e:
        # Also raised when OpenCV is installed but its system libraries are not (libGL.so.1:
        # apt-get install libgl1 libglib2.0-0); the cause says which.
        raise DependencyMissingError(f"OCR needs rapidocr-onnxruntime and OpenCV ({e})", _INSTALL) from e
    # "max": shrink a page to at most 960-2000 px on its long side, never enlarge; the default
    # ("min", 736) enlarges a wide, short image until its short side is 736 px, which made a
    # one-line 900x200 screenshot cost as much as a full page.
    return RapidOCR(det_limit_type="max")


def ocr_image(image: Image) -> str:
    """The text of one image: lines in reading order, a blank line where the vertical gap is wide."""
    import numpy as np

    rgb = image.convert("RGB")
    # RapidOCR works on OpenCV's BGR channel order.
    result, _ = _engine()(np.asarray(rgb)[:, :, ::-1])
    return _layout(result or [])


def _layout(result: list[Any]) -> str:
    """Group boxes into lines (by vertical overlap), lines into paragraphs (by the gap between them)."""
    boxes = []
    for box, text, _score in result:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        boxes.append((min(ys), max(ys), min(xs), str(text).strip()))
    boxes.sort()
    lines: list[tuple[float, float, list[tuple[float, str]]]] = []
    for top, bottom, left, text in boxes:
        if not text:
            continue
        if lines:
            ltop, lbottom, words = lines[-1]
            # Same line when the box's middle lies within the line's extent.
            if ltop <= (top + bottom) / 2 <= lbottom:
                words.append((left, text))
                lines[-1] = (ltop, max(lbottom, bottom), words)
                continue
        lines.append((top, bottom, [(left, text)]))
    out: list[str] = []
    prev_bottom: float | None = None
    for top, bottom, words in lines:
        text = _join(t for _, t in sorted(words))
        if prev_bottom is not None:
            height = max(bottom - top, 1.0)
            out.append("\n\n" if top - prev_bottom > 1.2 * height else "\n")
        out.append(text)
        prev_bottom = bottom
    return "".join(out)


def _join(pieces: Iterator[str]) -> str:
    """Words on one line: a space between Latin/digit neighbours, none between CJK ones."""
    out = ""
    for piece in pieces:
        if out and (out[-1].isascii() or piece[0].isascii()):
            out += " "
        out += piece
    return out


def pdf_pages(
    data: bytes, numbers: list[int], dpi: int = RENDER_DPI
) -> Iterator[tuple[int, Image | Exception]]:
    """Render the given 1-based pages of a PDF; a page that cannot be rendered yields its error."""
    try:
        import pypdfium2 as pdfium
    except ImportError as e:
        raise DependencyMissingError("OCR of PDF pages needs pypdfium2", _INSTALL) from e
    document = pdfium.PdfDocument(data)
    try:
        for number in numbers:
            try:
                page = document[number - 1]
                try:
                    image = page.render(scale=dpi / 72).to_pil()
                finally:
                    page.close()
            except Exception as e:  # pdfium raises PdfiumError and others on a damaged page
                yield number, e
                continue
            yield number, image
    finally:
        document.close()


def ocr_pages(
    pages: Iterator[tuple[int, Image | Exception]],
    total: int,
    on_page: Callable[[int, int], None] | None,
) -> Iterator[tuple[int, str | Exception]]:
    """OCR each page; a page that fails yields its error (the caller reports and skips it)."""
    for done, (number, image) in enumerate(pages, start=1):
        if isinstance(image, Exception):
            yield number, image
        else:
            try:
                yield number, ocr_image(image)
            except DependencyMissingError:
                raise
            except Exception as e:  # ONNX Runtime and OpenCV raise their own types on bad input
                yield number, e
        if on_page:
            on_page(done, total)
