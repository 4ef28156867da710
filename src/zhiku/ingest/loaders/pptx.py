"""PowerPoint (.pptx) via python-pptx: each slide a section, its speaker notes included.

A slide's title becomes a ``#`` heading (``Slide N`` when it has none) and the slide number is
recorded as the chunk's page, so a citation says "slide 3". Text boxes are read in the slide's
shape order, grouped shapes included; tables become Markdown tables.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from zhiku.errors import CorruptFileError, DependencyMissingError
from zhiku.ingest.loaders import LOADERS, LoadOptions, LoadedText
from zhiku.ingest.loaders.packages import open_package
from zhiku.ingest.loaders.tables import markdown_table


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    open_package(path, data, "a PowerPoint file (.pptx)", old_format=".ppt").close()
    try:
        from pptx import Presentation
    except ImportError as e:
        raise DependencyMissingError(
            f"reading {path} needs python-pptx", "pip install 'zhiku[documents]'"
        ) from e

    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    offset = 0
    try:
        deck = Presentation(io.BytesIO(data))
        title = (deck.core_properties.title or "").strip()
        for number, slide in enumerate(deck.slides, start=1):
            part = _slide(slide, number)
            pages.append((offset, number))
            parts.append(part)
            offset += len(part) + 2
    except Exception as e:
        # python-pptx raises KeyError, PackageNotFoundError, XML errors ... on damaged packages.
        raise CorruptFileError(
            f"{path} is not a readable .pptx file: {e}", "open it in PowerPoint and save it again as .pptx"
        ) from e
    return LoadedText("\n\n".join(parts), title or path.stem, "pptx", tuple(pages))


def _slide(slide: Any, number: int) -> str:
    title_shape = slide.shapes.title
    heading = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    blocks = [f"# {heading or f'Slide {number}'}"]
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            table = markdown_table([cell.text for cell in row.cells] for row in shape.table.rows)
            if table:
                blocks.append(table)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = "\n".join(p.strip() for p in shape.text_frame.text.splitlines() if p.strip())
            if text:
                blocks.append(text)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        text = " ".join(notes.text.split()) if notes is not None else ""
        if text:
            blocks.append(f"Notes: {text}")
    return "\n\n".join(blocks)


def _shapes(shapes: Iterable[Any]) -> Iterator[Any]:
    for shape in shapes:
        if hasattr(shape, "shapes"):  # a group: its members, in order
            yield from _shapes(shape.shapes)
        else:
            yield shape


LOADERS.add(".pptx", load)
