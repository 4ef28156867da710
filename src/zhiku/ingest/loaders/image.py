"""Images (.png, .jpg/.jpeg, .tif/.tiff, .bmp, .webp): their text, read by OCR.

Every frame of a multi-page TIFF (the usual output of office scanners) is a page, and its number is
recorded as the chunk's page. A frame that OCR cannot read is reported and skipped.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from zhiku.errors import CorruptFileError, IngestError
from zhiku.ingest.loaders import LOADERS, LoadOptions, LoadedText

if TYPE_CHECKING:
    from PIL.Image import Image


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    if not options.ocr:
        raise IngestError(
            f"{path} is an image and OCR is off for this knowledge base",
            "set ingest.ocr = true in zhiku.toml",
        )
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    from zhiku.ingest.ocr import ocr_pages

    try:
        image = PILImage.open(io.BytesIO(data))
        image.load()
        frames = getattr(image, "n_frames", 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as e:
        raise CorruptFileError(
            f"{path} is not a readable {path.suffix.lower().lstrip('.')} image: {e}",
            "check that it really is an image, or save it again as PNG",
        ) from e

    def pages() -> Iterator[tuple[int, Image | Exception]]:
        for number in range(1, frames + 1):
            try:
                image.seek(number - 1)
                yield number, image.copy()
            except (OSError, EOFError, ValueError) as e:
                yield number, e

    parts: list[str] = []
    located: list[tuple[int, int]] = []
    warnings: list[str] = []
    offset = 0
    for number, text in ocr_pages(pages(), frames, options.on_page):
        if isinstance(text, Exception):
            warnings.append(f"{path} page {number}: OCR failed ({text}); page skipped")
            continue
        if text.strip():
            located.append((offset, number))
            parts.append(text)
            offset += len(text) + 2
    return LoadedText("\n\n".join(parts), path.stem, "image", tuple(located), tuple(warnings))


LOADERS.add(".png", load)
LOADERS.add(".jpg", load)
LOADERS.add(".jpeg", load)
LOADERS.add(".tif", load)
LOADERS.add(".tiff", load)
LOADERS.add(".bmp", load)
LOADERS.add(".webp", load)
